import type { Digest } from '../oci/digest.js';

/** What a bake reports while it works; index 0 is the base, 1..n the steps. */
export type BakeEvent =
  | { type: 'start'; image: string; total: number }
  | { type: 'step-start'; index: number; total: number; label: string }
  | { type: 'step-done'; index: number; total: number; label: string; cached: boolean; digest: Digest | undefined; size: number; ms: number }
  | { type: 'files'; index: number; count: number }
  | { type: 'output'; index: number; line: string }
  | { type: 'warning'; message: string };

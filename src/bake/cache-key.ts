import type { BakeStep, ImageSpec } from '../config/types.js';
import { sha256, type Digest } from '../oci/digest.js';

/**
 * The cache key of a step: what it builds on (every layer below, by diff_id), the step
 * itself, and the digest of its inputs. Equal keys give equal layers, so a hit skips the work.
 */
export function stepCacheKey(below: Digest[], step: BakeStep, input: string): string {
  return sha256(JSON.stringify({ v: 1, below, step: withoutKey(step), input }));
}

/** A step without its `key`: where a step was written (copy[0] or steps[0]) changes nothing it makes. */
function withoutKey(step: BakeStep): Omit<BakeStep, 'key'> {
  const { key: _key, ...rest } = step;
  return rest;
}

/** The cache key of a host base layer. */
export function hostCacheKey(inputDigest: string): string {
  return sha256(JSON.stringify({ v: 1, host: inputDigest }));
}

/**
 * The digest of a spec as written, without where it was built (the context's absolute
 * path) or what it is called: the same recipe gives the same hash on any machine.
 */
export function specHash(spec: ImageSpec): Digest {
  const { name: _name, context: _context, steps, ...recipe } = spec;
  return sha256(JSON.stringify({ ...recipe, steps: steps.map(withoutKey) }));
}

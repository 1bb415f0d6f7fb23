import { describeValue, type Parsed } from './describe-value.js';

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  ki: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mi: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gi: 1024 ** 3,
  gib: 1024 ** 3,
};
const SIZE_RE = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/;
/** Docker refuses a memory limit under 6 MiB; far larger is a typo (1 TiB). */
const MIN_BYTES = 6 * 1024 ** 2;
const MAX_BYTES = 1024 ** 4;

/**
 * Parses a memory size to bytes: "256Mi", "512m", "1G", "1.5GiB", or a bare number of bytes.
 * `k`, `m` and `g` are binary (as Docker reads them), `kb`, `mb` and `gb` decimal.
 * From 6 MiB (Docker's floor) to 1 TiB.
 *
 * @example parseByteSize('256Mi') // 268435456
 */
export function parseByteSize(value: string | number): Parsed<number> {
  const error = { error: `expected a memory size from 6Mi to 1Ti like "256Mi", "512m" or "1G", got ${describeValue(value)}` };
  const inRange = (bytes: number) => (Number.isFinite(bytes) && bytes >= MIN_BYTES && bytes <= MAX_BYTES ? Math.floor(bytes) : error);
  if (typeof value === 'number') return Number.isInteger(value) ? inRange(value) : error;
  if (typeof value !== 'string') return error;
  const match = SIZE_RE.exec(value.trim().toLowerCase());
  const unit = match ? UNITS[match[2]!] : undefined;
  if (!match || unit === undefined) return error;
  return inRange(Number(match[1]) * unit);
}

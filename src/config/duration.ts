import { describeValue, type Parsed } from './describe-value.js';
import type { Millis } from './types.js';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
/** Durations run from 1ms to 24h by default: 0 means "the default" to Docker, and far larger overflow its int64 nanoseconds. */
const MIN_MS = 1;
const MAX_MS = 24 * 3_600_000;
const SECONDS_RE = /^\d+(?:\.\d+)?$/;
const DURATION_RE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const PART_RE = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;

/**
 * Parses a duration to milliseconds: "250ms", "5s", "1m30s", "2h", "7d", "1.5s", or a bare number of seconds.
 * From 1ms (or 0 with `zero`, where 0 means "none") to 24h, or to `max` (ms) when given.
 *
 * @example parseDuration('1m30s') // 90000
 */
export function parseDuration(value: string | number, options: { zero?: boolean; max?: Millis } = {}): Parsed<Millis> {
  const min = options.zero ? 0 : MIN_MS;
  const max = options.max ?? MAX_MS;
  const error = { error: `expected a duration from ${min === 0 ? '0s' : '1ms'} to ${formatLimit(max)} like "5s", "1m30s" or "250ms", got ${describeValue(value)}` };
  const inRange = (ms: number) => (Number.isFinite(ms) && ms >= min && ms <= max ? ms : error);
  if (typeof value === 'number') return inRange(Math.round(value * 1000));
  if (typeof value !== 'string') return error;
  const text = value.trim();
  if (SECONDS_RE.test(text)) return inRange(Math.round(Number(text) * 1000));
  if (!DURATION_RE.test(text)) return error;
  let total = 0;
  for (const [, amount, unit] of text.matchAll(PART_RE)) {
    total += Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
  }
  return inRange(Math.round(total));
}

/** A duration limit in its largest whole unit: `24h`, `365d`. */
function formatLimit(ms: Millis): string {
  for (const [unit, size] of [['d', UNIT_MS.d], ['h', UNIT_MS.h], ['m', UNIT_MS.m], ['s', UNIT_MS.s]] as const) {
    if (ms % size === 0 && ms >= size && (unit !== 'd' || ms > 24 * UNIT_MS.h)) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

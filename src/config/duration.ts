import { describeValue, type Parsed } from './describe-value.js';
import type { Millis } from './types.js';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
const SECONDS_RE = /^\d+(?:\.\d+)?$/;
const DURATION_RE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/;
const PART_RE = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;

/**
 * Parses a duration to milliseconds: "250ms", "5s", "1m30s", "2h", "1.5s", or a bare number of seconds.
 *
 * @example parseDuration('1m30s') // 90000
 */
export function parseDuration(value: string | number): Parsed<Millis> {
  const error = { error: `expected a duration like "5s", "1m30s" or "250ms", got ${describeValue(value)}` };
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= 0 ? Math.round(value * 1000) : error;
  }
  if (typeof value !== 'string') return error;
  const text = value.trim();
  if (SECONDS_RE.test(text)) return Math.round(Number(text) * 1000);
  if (!DURATION_RE.test(text)) return error;
  let total = 0;
  for (const [, amount, unit] of text.matchAll(PART_RE)) {
    total += Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
  }
  return Math.round(total);
}

/** A number of instances, given absolutely or as a percentage of the replicas. */
export type Count = { kind: 'count'; value: number } | { kind: 'percent'; value: number };

/**
 * Parses `2`, `"2"` or `"25%"`. Returns an error message (for the caller to prefix with
 * its key path) instead of throwing.
 */
export function parseCount(input: unknown): Count | { error: string } {
  const expected = `expected an integer or a percentage like "25%", got ${typeof input === 'string' ? `"${input}"` : JSON.stringify(input)}`;
  if (typeof input === 'number') return Number.isInteger(input) && input >= 0 ? { kind: 'count', value: input } : { error: expected };
  if (typeof input !== 'string') return { error: expected };
  const text = input.trim();
  if (/^\d+$/.test(text)) return { kind: 'count', value: Number(text) };
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(text);
  if (percent && Number(percent[1]) <= 100) return { kind: 'percent', value: Number(percent[1]) };
  return { error: expected };
}

/** Resolves a count against `replicas`: percentages round up (`up`) or down (`down`). */
export function resolveCount(count: Count, replicas: number, round: 'up' | 'down'): number {
  if (count.kind === 'count') return count.value;
  const exact = (count.value * replicas) / 100;
  return round === 'up' ? Math.ceil(exact) : Math.floor(exact);
}

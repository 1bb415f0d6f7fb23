/** Describes a received value for an "expected X, got Y" message: `"many"`, `-1`, `an object`, `nothing`. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (Array.isArray(value)) return value.length === 0 ? 'an empty array' : 'an array';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

/** The result of a small parser: the value, or an error message that says what was expected and what came. */
export type Parsed<T> = T | { error: string };

/** True when a parser returned an error instead of a value. */
export function isParseError<T>(result: Parsed<T>): result is { error: string } {
  return typeof result === 'object' && result !== null && 'error' in result;
}

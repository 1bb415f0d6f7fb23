import { ConfigError } from '../errors.js';
import { describeValue } from '../config/describe-value.js';

/**
 * Serialises a JSON value with object keys sorted (by UTF-16 code units) and no whitespace,
 * so equal values give equal text: what the ledger hashes. `undefined` object members are left
 * out; anything JSON cannot say (NaN, a bigint, a function, a cycle) is a ConfigError naming its path.
 */
export function canonicalJson(value: unknown, path = 'data'): string {
  return write(value, path, new Set());
}

function write(value: unknown, path: string, seen: Set<object>): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new ConfigError(`${path}: expected a finite number, got ${describeValue(value)}`);
    return JSON.stringify(value);
  }
  if (typeof value !== 'object') throw new ConfigError(`${path}: expected a JSON value, got ${describeValue(value)}`);
  const json = (value as { toJSON?: unknown }).toJSON;
  if (typeof json === 'function') return write(json.call(value), path, seen);
  if (seen.has(value)) throw new ConfigError(`${path}: expected a JSON value, got a cycle`);
  seen.add(value);
  let text: string;
  if (Array.isArray(value)) {
    text = `[${value.map((item, i) => (item === undefined ? 'null' : write(item, `${path}[${i}]`, seen))).join(',')}]`;
  } else {
    const record = value as Record<string, unknown>;
    const members = Object.keys(record)
      .filter((key) => record[key] !== undefined)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${write(record[key], `${path}.${key}`, seen)}`);
    text = `{${members.join(',')}}`;
  }
  seen.delete(value);
  return text;
}

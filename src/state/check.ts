import { ConfigError } from '../errors.js';
import { describeValue } from '../config/describe-value.js';

/** Checks that `value` is a non-empty string, else a ConfigError "<field>: expected …, got …". */
export function checkText(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') throw new ConfigError(`${field}: expected a non-empty string, got ${describeValue(value)}`);
  return value;
}

/** Checks that `value` is a positive integer (a row id), else a ConfigError. */
export function checkId(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw new ConfigError(`${field}: expected a positive integer, got ${describeValue(value)}`);
  return value;
}

/** Checks that `value` is one of `allowed`, else a ConfigError listing them. */
export function checkOneOf<T extends string>(field: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new ConfigError(`${field}: expected one of ${allowed.join(', ')}, got ${describeValue(value)}`);
  }
  return value as T;
}

/** Checks that `value` is a plain object (not null, not an array), else a ConfigError. */
export function checkObject(field: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigError(`${field}: expected an object, got ${describeValue(value)}`);
  return value as Record<string, unknown>;
}

/** A nullable column as an optional field. */
export function orUndefined<T>(value: T | null): T | undefined {
  return value === null ? undefined : value;
}

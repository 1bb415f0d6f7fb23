import { z } from 'zod';
import { isParseError, type Parsed } from './describe-value.js';

/**
 * A strict object: unknown keys are errors that list the accepted keys, and a value
 * that is not an object reads "expected <what>".
 */
export function strictObject<Shape extends z.ZodRawShape>(shape: Shape, what: string) {
  const accepted = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys' ? `unknown key (expected one of: ${accepted})` : `expected ${what}`,
  });
}

/** A string or number read by one of the small `parse*` functions, so checking and converting are one step. */
export function parsedScalar<T>(expected: string, parse: (value: string | number) => Parsed<T>) {
  return z.union([z.string(), z.number()], { error: `expected ${expected}` }).transform((value, ctx): T => {
    const result = parse(value);
    if (!isParseError(result)) return result;
    ctx.addIssue({ code: 'custom', message: result.error, input: value });
    return z.NEVER;
  });
}

/** A string that must pass `test`; otherwise "expected <expected>, got …". */
export function checkedString(expected: string, test: (value: string) => boolean) {
  return z.string({ error: `expected ${expected}` }).refine(test, { error: `expected ${expected}` });
}

/** True when a key of a possibly half-parsed object holds a value (refinements may run on partial input). */
export function has(value: unknown, key: string): boolean {
  return typeof value === 'object' && value !== null && (value as Record<string, unknown>)[key] !== undefined;
}

/** Runs an object-level refinement even when some fields failed, so all problems are reported at once. */
export const evenIfFieldsFailed = { when: (payload: { value: unknown }) => typeof payload.value === 'object' && payload.value !== null };

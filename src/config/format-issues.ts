import type { z } from 'zod';
import { describeValue } from './describe-value.js';

type Issue = z.core.$ZodIssue;
type Path = ReadonlyArray<PropertyKey>;

const SIMPLE_KEY_RE = /^[A-Za-z0-9_/-]+$/;

/** Formats a key path the way the config is written: `images.web.copy[1].src`. */
export function formatPath(path: Path): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && SIMPLE_KEY_RE.test(key)) out += out === '' ? key : `.${key}`;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out;
}

/**
 * Turns zod issues into one line each: `<path>: expected X, got Y`, or
 * `<path>.<key>: unknown key (expected one of: …)`. `input` is the value that was parsed.
 */
export function formatIssues(issues: readonly Issue[], input: unknown): string[] {
  return issues.flatMap((issue) => linesOf(issue, [], input));
}

/** The lines for one issue whose path is relative to `base`. */
function linesOf(issue: Issue, base: Path, root: unknown): string[] {
  const path = [...base, ...issue.path];
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => line([...path, key], issue.message));
  }
  if (issue.code === 'invalid_key') {
    return [line(path, withGot(issue.issues[0]?.message ?? 'expected a valid key', path[path.length - 1]))];
  }
  if (issue.code === 'invalid_union') {
    const chosen = matchingBranch(issue.errors);
    if (chosen) return chosen.flatMap((inner) => linesOf(inner, path, root));
  }
  const received = 'input' in issue ? issue.input : valueAt(root, path);
  return [line(path, withGot(issue.message, received))];
}

/**
 * The one union branch whose problems lie deeper than its type or value (an array with a bad
 * element, an object with a bad field), so the message can point at them; undefined when no
 * single one does (then the union's own message says what was expected).
 */
function matchingBranch(branches: readonly Issue[][]): Issue[] | undefined {
  const deeper = branches.filter(
    (issues) => issues.length > 0 && !issues.every((issue) => (issue.code === 'invalid_type' || issue.code === 'invalid_value') && issue.path.length === 0),
  );
  return deeper.length === 1 ? deeper[0] : undefined;
}

/** Appends ", got <value>" to an "expected …" message that does not already say what came. */
function withGot(message: string, received: unknown): string {
  if (!message.startsWith('expected ') || message.includes(', got ')) return message;
  return `${message}, got ${describeValue(received)}`;
}

/** One output line. */
function line(path: Path, message: string): string {
  return path.length === 0 ? message : `${formatPath(path)}: ${message}`;
}

/** The value found at `path` inside `root`, or undefined. */
function valueAt(root: unknown, path: Path): unknown {
  let value = root;
  for (const key of path) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

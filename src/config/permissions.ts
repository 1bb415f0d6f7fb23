import { describeValue, type Parsed } from './describe-value.js';

/** The largest owner id a plain tar header holds (7 octal digits). */
const MAX_ID = 0o7777777;
const MODE_RE = /^[0-7]{1,4}$/;
const OWNER_RE = /^(\d+)(?::(\d+))?$/;

/**
 * Parses a file mode: an octal string ("0755", "644"). A number is refused, saying why: in a
 * TS config, `mode: 755` is decimal 755 (0o1363), never what was meant.
 */
export function parseMode(value: string | number): Parsed<number> {
  if (typeof value === 'string' && MODE_RE.test(value.trim())) return Number.parseInt(value.trim(), 8);
  if (typeof value === 'number') {
    return { error: `expected an octal mode as a string like "0755", got the number ${value} (write it as a string, so 755 cannot be read as decimal)` };
  }
  return { error: `expected an octal mode like "0755" or "644", got ${describeValue(value)}` };
}

/** Parses a numeric owner: "uid", "uid:gid" or a number (a lone uid is also the gid, as in Docker). */
export function parseOwner(value: string | number): Parsed<{ uid: number; gid: number }> {
  const error = { error: `expected a numeric owner like "1000" or "1000:1000" (ids up to ${MAX_ID}), got ${describeValue(value)}` };
  const match = OWNER_RE.exec(typeof value === 'number' ? String(value) : value.trim());
  if (!match) return error;
  const uid = Number(match[1]);
  const gid = match[2] === undefined ? uid : Number(match[2]);
  return uid <= MAX_ID && gid <= MAX_ID ? { uid, gid } : error;
}

/**
 * Field schemas of the raw config file, one per kind of value. Each says what it expects
 * in its own words; the object schemas in schema.ts put them together.
 */
import { z } from 'zod';
import { formatImageRef, isImageName, parseImageRef } from '../oci/reference.js';
import { isParseError } from './describe-value.js';
import { parseDuration } from './duration.js';
import { isCleanAbsolutePath, isPathInside } from './paths.js';
import { parseMode, parseOwner } from './permissions.js';
import type { BaseSpec } from './types.js';
import { checkedString, evenIfFieldsFailed, has, parsedScalar, strictObject } from './schema-helpers.js';

const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const USER_RE = /^[^\s:]+(?::[^\s:]+)?$/;

/** An image name, as used for the keys of `images`. */
export const imageName = checkedString(
  'an image name of lowercase letters and digits with ".", "_" or "-" separators and optional "/" parts',
  isImageName,
);

/** A duration such as "5s", parsed to milliseconds. */
export const duration = parsedScalar('a duration from 1ms to 24h like "5s", "1m30s" or "250ms"', (value) => parseDuration(value));

/** The longest a long-lived duration (an instance's max age) may be: a year. */
export const LONG_DURATION_MAX_MS = 365 * 86_400_000;

/** A long duration (an instance's max age), from 1s to 365d, parsed to milliseconds. */
export const longDuration = parsedScalar('a duration from 1s to 365d like "24h", "7d" or "90m"', (value) => {
  const parsed = parseDuration(value, { max: LONG_DURATION_MAX_MS });
  return typeof parsed === 'number' && parsed < 1000 ? { error: `expected a duration from 1s to 365d like "24h", "7d" or "90m", got ${JSON.stringify(value)}` } : parsed;
});

/** How long a release must have been live before it is promoted on: 0s to 365d, parsed to milliseconds. */
export const soak = parsedScalar('a duration from 0s to 365d like "0s", "30m" or "1d"', (value) => parseDuration(value, { zero: true, max: LONG_DURATION_MAX_MS }));

/** A duration that may be zero (a start period of none), parsed to milliseconds. */
export const durationOrZero = parsedScalar('a duration from 0s to 24h like "0s", "5s" or "1m30s"', (value) => parseDuration(value, { zero: true }));

/** An absolute POSIX path inside the image. */
export const absolutePath = checkedString('an absolute path without ".." segments, like "/app"', isCleanAbsolutePath);

const COMMAND = 'expected a command string or a non-empty array of strings';

/** A command: shell form (a string) or exec form (a non-empty array of strings). */
export const command = z.union(
  [z.string().min(1, { error: COMMAND }), z.array(z.string({ error: 'expected a string' })).min(1, { error: COMMAND })],
  { error: COMMAND },
);

const HOST = 'expected an executable name, an absolute path, or a non-empty array of them';
const executable = checkedString('an executable name or an absolute path', isExecutable);

/** What an image starts from: "scratch", a stored image reference, or host executables; parsed to a BaseSpec. */
export const from = z.union(
  [
    z.string().transform((value, ctx): BaseSpec => {
      if (value === 'scratch') return { kind: 'scratch' };
      const ref = parseImageRef(value);
      if (!isParseError(ref)) return { kind: 'image', ref: formatImageRef(ref) };
      ctx.addIssue({ code: 'custom', message: ref.error, input: value });
      return z.NEVER;
    }),
    strictObject(
      { host: z.union([executable, z.array(executable).min(1, { error: HOST })], { error: HOST }) },
      'an object like { host: [node] }',
    ).transform(({ host }): BaseSpec => ({ kind: 'host', executables: typeof host === 'string' ? [host] : [...host] })),
  ],
  { error: 'expected "scratch", an image reference like "web:1.4", or { host: [...] }' },
);

/** One copy from the build context into the image. */
export const copy = strictObject(
  {
    src: checkedString('a path inside the build context', isPathInside),
    dest: absolutePath,
    exclude: z.array(z.string({ error: 'expected a glob pattern' }).min(1, { error: 'expected a glob pattern' }), {
      error: 'expected an array of glob patterns',
    }).optional(),
    mode: parsedScalar('an octal mode as a string like "0755" or "644"', parseMode).optional(),
    owner: parsedScalar('a numeric owner like "1000" or "1000:1000"', parseOwner).optional(),
  },
  'an object like { src: app/, dest: /app }',
);

/** One ordered step: `{ copy: {...} }` or `{ run: ... }`. */
export const step = strictObject({ copy: copy.optional(), run: command.optional() }, 'an object like { copy: {...} } or { run: "..." }')
  .superRefine((value, ctx) => {
    if (has(value, 'copy') === has(value, 'run')) ctx.addIssue({ code: 'custom', message: 'expected exactly one of copy or run', input: value });
  }, evenIfFieldsFailed);

const RETRIES = 'expected a whole number of at least 1';

/** An HTTP or command health check; timings are optional here and defaulted in normalise.ts. */
export const health = strictObject(
  {
    http: checkedString('an HTTP path starting with "/"', (path) => path.startsWith('/')).optional(),
    command: command.optional(),
    interval: duration.optional(),
    timeout: duration.optional(),
    retries: z.number({ error: RETRIES }).int({ error: RETRIES }).min(1, { error: RETRIES }).optional(),
    startPeriod: durationOrZero.optional(),
  },
  'an object like { http: /healthz } or { command: "..." }',
).superRefine((value, ctx) => {
  if (has(value, 'http') === has(value, 'command')) ctx.addIssue({ code: 'custom', message: 'expected exactly one of http or command', input: value });
}, evenIfFieldsFailed);

/** Environment variables: names like shell variables; numbers and booleans become strings. */
export const env = z.record(
  checkedString('an environment variable name like NODE_ENV', (name) => ENV_NAME_RE.test(name)),
  z.union([z.string(), z.number(), z.boolean()], { error: 'expected a string, number or boolean' }).transform(String),
  { error: 'expected an object of NAME: value' },
);

/** Labels: non-empty keys, string values. */
export const labels = z.record(
  checkedString('a non-empty label key', (key) => key.length > 0),
  z.string({ error: 'expected a string' }),
  { error: 'expected an object of key: value' },
);

const USER = 'expected a user like "1000:1000" or "app"';

/** The user a container runs as: "uid", "uid:gid" or a name; a number is read as a uid. */
export const user = z.union([z.string(), z.number().int({ error: USER }).min(0, { error: USER })], { error: USER })
  .transform(String)
  .refine((value) => USER_RE.test(value), { error: USER });

const PORT = 'expected a port number from 1 to 65535';

/** A TCP port. */
export const port = z.number({ error: PORT }).int({ error: PORT }).min(1, { error: PORT }).max(65535, { error: PORT });

/** A host executable: a bare name looked up on PATH, or an absolute path. */
function isExecutable(value: string): boolean {
  return value.length > 0 && !/\s/.test(value) && (!value.includes('/') || isCleanAbsolutePath(value));
}

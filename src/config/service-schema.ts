/**
 * The schema of `services.<name>`: a fleet of identical instances of one image. Values with
 * a unit are parsed here; defaults are applied once, in normalise.ts.
 */
import { z } from 'zod';
import { parseCount, type Count } from '../core/count.js';
import { isImageName, parseImageRef } from '../oci/reference.js';
import { parseByteSize } from './byte-size.js';
import * as field from './schema-fields.js';
import { PROVIDERS } from './types.js';
import { checkedString, evenIfFieldsFailed, has, parsedScalar, strictObject } from './schema-helpers.js';

/** The most instances one service may ask for: a typo guard (100000), not a scaling limit. */
export const MAX_REPLICAS = 1000;

const REPLICAS = `expected a whole number of instances from 0 to ${MAX_REPLICAS}`;
const THRESHOLD = 'expected a whole number of at least 1';

/** A count of instances: an integer or a percentage of the replicas. */
const count = z
  .union([z.string(), z.number()], { error: 'expected an integer or a percentage like "25%"' })
  .transform((value, ctx): Count => {
    const parsed = parseCount(value);
    if (!('error' in parsed)) return parsed;
    ctx.addIssue({ code: 'custom', message: parsed.error, input: value });
    return z.NEVER;
  });

/** How a deploy replaces the fleet: a name, or an object with the rolling limits. */
export const strategy = z.union(
  [
    z.enum(['rolling', 'blue-green'], { error: 'expected "rolling" or "blue-green"' }),
    strictObject(
      {
        type: z.enum(['rolling', 'blue-green'], { error: 'expected "rolling" or "blue-green"' }),
        maxSurge: count.optional(),
        maxUnavailable: count.optional(),
      },
      'an object like { type: rolling, maxSurge: 1, maxUnavailable: 0 }',
    ),
  ],
  { error: 'expected "rolling", "blue-green" or { type: rolling, maxSurge: 1, maxUnavailable: 0 }' },
);

/** A service's health check: like an image's, with thresholds instead of retries. */
export const serviceHealth = strictObject(
  {
    http: checkedString('an HTTP path starting with "/"', (path) => path.startsWith('/')).optional(),
    command: field.command.optional(),
    interval: field.duration.optional(),
    timeout: field.duration.optional(),
    startPeriod: field.durationOrZero.optional(),
    startInterval: field.duration.optional(),
    healthyThreshold: z.number({ error: THRESHOLD }).int({ error: THRESHOLD }).min(1, { error: THRESHOLD }).optional(),
    unhealthyThreshold: z.number({ error: THRESHOLD }).int({ error: THRESHOLD }).min(1, { error: THRESHOLD }).optional(),
  },
  'an object like { http: /healthz, interval: 1s }',
).superRefine((value, ctx) => {
  if (has(value, 'http') && has(value, 'command')) ctx.addIssue({ code: 'custom', message: 'expected one of http or command, not both', input: value });
}, evenIfFieldsFailed);

/** An address and port for the service's router, like "127.0.0.1:8080", "0.0.0.0:443" or a port (on 127.0.0.1). */
const listen = parsedScalar('an address like "127.0.0.1:8080", or a port', (value): { host: string; port: number } | { error: string } => {
  const text = String(value).trim();
  const match = /^(?:(\d{1,3}(?:\.\d{1,3}){3}|\[::1\]|localhost):)?(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (!match || port < 1 || port > 65535) return { error: `expected an address like "127.0.0.1:8080", or a port, got ${JSON.stringify(value)}` };
  return { host: (match[1] ?? '127.0.0.1').replace(/^\[|\]$/g, ''), port };
});

/** A certificate or key file: absolute, or relative to the config file's folder. */
const tlsFile = checkedString('a file path like "certs/web.crt" or "/etc/imago/web.crt"', (value) => value.trim() !== '' && !value.includes('\0'));

/** The router's address, with TLS terminated there when `tls` names a certificate and its key. */
const listenWithTls = strictObject(
  { address: listen, tls: strictObject({ cert: tlsFile, key: tlsFile }, 'an object like { cert: web.crt, key: web.key }').optional() },
  'an object like { address: "0.0.0.0:443", tls: { cert: web.crt, key: web.key } }',
);

/** Named persistent volumes: name → absolute mount path inside the instance. */
const volumes = z.record(
  checkedString('a volume name of letters, digits, "_", "." or "-"', (name) => /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name)),
  field.absolutePath,
  { error: 'expected an object of volume name: mount path' },
);

const PIDS = 'expected a whole number of processes from 16 to 100000';

/** What one instance may use: memory and processes (enforced by the provider). */
const resources = strictObject(
  {
    memory: parsedScalar('a memory size like "256Mi", "512m" or "1G"', (value) => parseByteSize(value)).optional(),
    pids: z.number({ error: PIDS }).int({ error: PIDS }).min(16, { error: PIDS }).max(100_000, { error: PIDS }).optional(),
  },
  'an object like { memory: 256Mi, pids: 256 }',
);

/** How far one instance's max age may stray from `maxAge`: a percentage from 0% to 50%. */
const jitter = parsedScalar('a percentage from 0% to 50% like "10%"', (value): number | { error: string } => {
  const match = /^(\d+(?:\.\d+)?)%$/.exec(String(value).trim());
  const percent = Number(match?.[1]);
  if (!match || typeof value !== 'string' || percent > 50) return { error: `expected a percentage from 0% to 50% like "10%", got ${JSON.stringify(value)}` };
  return percent / 100;
});

/** How a crash-looping release backs off before its next start. */
const backoff = strictObject(
  { initial: field.duration.optional(), max: field.duration.optional(), reset: field.duration.optional() },
  'an object like { initial: 1s, max: 5m, reset: 10m }',
);

/** An image reference for a service: a stored image or one this config bakes. */
const image = checkedString('an image reference like "web", "web:1.4" or "sha256:…"', (value) => !('error' in parseImageRef(value)));

/** What a secret's name must look like, in an error's words. */
export const SECRET_NAME = 'a secret name of lowercase letters, digits, ".", "_" and "-" (at most 63)';

/** True for a valid secret name. */
export function isSecretName(name: string): boolean {
  return /^[a-z0-9][a-z0-9_.-]{0,62}$/.test(name);
}

/** A secret's name, as `imago secret set <env> <name>` stores it. */
export const secretName = checkedString(SECRET_NAME, isSecretName);

/** How an instance gets one secret: an environment variable, or a file under /run/secrets. */
const secretUse = z.union(
  [
    strictObject({ env: checkedString('an environment variable name like "DB_PASSWORD"', (v) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(v) && v !== 'PORT' && v !== 'HOST') }, 'an object like { env: DB_PASSWORD }'),
    strictObject({ file: checkedString('a file right under /run/secrets, like "/run/secrets/db-password"', (v) => /^\/run\/secrets\/[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(v)) }, 'an object like { file: /run/secrets/db-password }'),
  ],
  { error: 'expected { env: VARIABLE } or { file: /run/secrets/<name> }' },
);

/** One service. */
export const serviceSchema = strictObject(
  {
    image,
    replicas: z.number({ error: REPLICAS }).int({ error: REPLICAS }).min(0, { error: REPLICAS }).max(MAX_REPLICAS, { error: REPLICAS }).optional(),
    port: field.port.optional(),
    listen: z.union([listen, listenWithTls], { error: 'expected an address like "127.0.0.1:8080", a port, or { address, tls: { cert, key } }' }).optional(),
    protocol: z.enum(['http', 'tcp'], { error: 'expected "http" or "tcp"' }).optional(),
    keepPrevious: field.durationOrZero.optional(),
    health: serviceHealth.optional(),
    strategy: strategy.optional(),
    env: field.env.optional(),
    volumes: volumes.optional(),
    stopGrace: field.duration.optional(),
    drainTimeout: field.durationOrZero.optional(),
    deployTimeout: field.duration.optional(),
    resources: resources.optional(),
    provider: z.enum(PROVIDERS, { error: `expected one of ${PROVIDERS.map((p) => `"${p}"`).join(', ')}` }).optional(),
    maxAge: field.longDuration.optional(),
    maxAgeJitter: jitter.optional(),
    drift: z.enum(['replace', 'report'], { error: 'expected "replace" or "report"' }).optional(),
    backoff: backoff.optional(),
    secrets: z.record(secretName, secretUse, { error: 'expected an object of secret name: { env: VARIABLE } or { file: /run/secrets/<name> }' }).optional(),
  },
  'an object describing a service',
);

/** A service name: the same rules as an image name. */
export const serviceName = checkedString('a service name of lowercase letters and digits with ".", "_" or "-" separators', isImageName);

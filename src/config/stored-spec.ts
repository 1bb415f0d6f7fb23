/**
 * The stored form of a normalised service spec (a release's rendered config): the spec with
 * its schema version. What the server stores it reads back through a schema too, never with
 * a cast: a row this imago does not understand is an error naming the row and the key.
 */
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { formatIssues } from './format-issues.js';
import { DEFAULTS, describeProblems } from './normalise.js';
import { PROVIDERS, type ServiceSpec } from './types.js';

/**
 * The version of the stored form written now. 1: rows from before versions (read with the
 * guard's defaults); 2: before the data plane's keys (read with `protocol: http`, no TLS, no
 * `keepPrevious`); 3: before secrets (read with none).
 */
export const SERVICE_SPEC_VERSION = 4;

const ms = z.number().int().min(0);
const count = z.strictObject({ kind: z.enum(['count', 'percent']), value: z.number().min(0) });
const check = z.union([
  z.strictObject({ kind: z.literal('http'), path: z.string().startsWith('/') }),
  z.strictObject({ kind: z.literal('command'), command: z.union([z.string().min(1), z.array(z.string()).min(1)]) }),
  z.strictObject({ kind: z.literal('tcp') }),
]);

/** The normalised spec, exactly (what normaliseService produces). */
const storedSpec = z.strictObject({
  name: z.string().min(1),
  image: z.string().min(1),
  replicas: z.number().int().min(0),
  port: z.number().int().min(1).max(65535).optional(),
  listen: z.strictObject({ host: z.string().min(1), port: z.number().int().min(0).max(65535), tls: z.strictObject({ cert: z.string().startsWith('/'), key: z.string().startsWith('/') }).optional() }).optional(),
  protocol: z.enum(['http', 'tcp']),
  keepPrevious: ms,
  health: z
    .strictObject({ check, interval: ms, timeout: ms, startPeriod: ms, startInterval: ms, healthyThreshold: z.number().int().min(1), unhealthyThreshold: z.number().int().min(1) })
    .optional(),
  strategy: z.union([z.strictObject({ kind: z.literal('rolling'), maxSurge: count, maxUnavailable: count }), z.strictObject({ kind: z.literal('blue-green') })]),
  env: z.array(z.tuple([z.string(), z.string()])),
  volumes: z.record(z.string(), z.string().startsWith('/')),
  stopGrace: ms,
  drainTimeout: ms,
  deployTimeout: ms,
  resources: z.strictObject({ memory: z.number().int().min(1), pids: z.number().int().min(1) }),
  provider: z.enum(PROVIDERS),
  maxAge: ms.optional(),
  maxAgeJitter: z.number().min(0).max(1),
  drift: z.enum(['replace', 'report']),
  backoff: z.strictObject({ initial: ms, max: ms, reset: ms }),
  secrets: z.array(z.union([z.strictObject({ name: z.string().min(1), env: z.string().min(1) }), z.strictObject({ name: z.string().min(1), file: z.string().startsWith('/run/secrets/') })])),
});

/** The JSON a release stores for `spec`: every key, and the schema version. */
export function storeServiceSpec(spec: ServiceSpec): Record<string, unknown> {
  return { schemaVersion: SERVICE_SPEC_VERSION, ...(JSON.parse(JSON.stringify(spec)) as Record<string, unknown>) };
}

/**
 * Reads a stored spec back, checked against the schema of its version. `where` names the row
 * for messages (`release 3 of 'web'`). A row written before versions (no `schemaVersion`)
 * gets the keys added since, with their defaults.
 */
export function readServiceSpec(stored: Record<string, unknown>, where: string): ServiceSpec {
  const { schemaVersion, ...rest } = stored;
  const version = schemaVersion ?? 1;
  if (version !== 1 && version !== 2 && version !== 3 && version !== SERVICE_SPEC_VERSION) {
    throw new ConfigError(`${where}: its service spec has schema version ${JSON.stringify(version)}, and this imago reads 1 to ${SERVICE_SPEC_VERSION}: upgrade imago`);
  }
  const older = version === 1 ? upgradeFromVersion2(upgradeFromVersion1(rest)) : version === 2 ? upgradeFromVersion2(rest) : rest;
  const input = version === SERVICE_SPEC_VERSION ? rest : { ...older, secrets: [] };
  const result = storedSpec.safeParse(input, { reportInput: true });
  if (!result.success) throw new ConfigError(`${where}: its stored service spec is not one this imago understands: ${describeProblems(formatIssues(result.error.issues, input))}`);
  const spec = result.data;
  return { ...spec, port: spec.port, listen: spec.listen, health: spec.health, maxAge: spec.maxAge } as ServiceSpec;
}

/** A spec stored before versions: the keys added since (resources, provider, the guard's, startInterval) with their defaults. */
function upgradeFromVersion1(spec: Record<string, unknown>): Record<string, unknown> {
  const d = DEFAULTS.service;
  const health = spec.health as Record<string, unknown> | undefined;
  return {
    resources: { ...d.resources },
    provider: d.provider,
    maxAgeJitter: d.maxAgeJitter,
    drift: d.drift,
    backoff: { ...d.backoff },
    ...spec,
    ...(health ? { health: { startInterval: d.health.startInterval, ...health } } : {}),
  };
}

/** A spec stored at version 2: the data plane's keys with their defaults (HTTP, no TLS, no kept release). */
function upgradeFromVersion2(spec: Record<string, unknown>): Record<string, unknown> {
  const d = DEFAULTS.service;
  return { ...spec, protocol: spec.protocol ?? d.protocol, keepPrevious: spec.keepPrevious ?? d.keepPrevious };
}

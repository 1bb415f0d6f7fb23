import { ConfigError } from '../errors.js';

/**
 * Environments: one config, many places it runs (dev, staging, prod). A service in an
 * environment is one unit of desired state, named by its key: the bare service name in the
 * control plane's home environment (`imago server --env`, default `default`), and
 * `<name>@<env>` in every other. Every table, lock, label, folder and volume keyed by it keeps
 * two environments of one service apart, and state made before environments existed is the
 * home environment's, unchanged. Pure.
 */

/** The environment of a config that declares none, and of a control plane started without `--env`. */
export const DEFAULT_ENVIRONMENT = 'default';

const ENVIRONMENT_RE = /^[a-z][a-z0-9-]{0,31}$/;

/** What an environment name must look like, in the words of an error. */
export const ENVIRONMENT_NAME = 'an environment name of lowercase letters, digits and "-", starting with a letter, at most 32 characters';

/** True for a valid environment name. */
export function isEnvironmentName(name: string): boolean {
  return ENVIRONMENT_RE.test(name);
}

/** `name` when it is a valid environment name, else a ConfigError naming `what` (`--env`, `<env>`). */
export function checkEnvironmentName(name: string, what: string): string {
  if (!isEnvironmentName(name)) throw new ConfigError(`${what}: expected ${ENVIRONMENT_NAME}, got "${name}"`);
  return name;
}

/** The keys of a service an environment may change: how it runs, never what runs (the image, its port, its volumes, its protocol). */
export const OVERRIDABLE_KEYS = [
  'replicas',
  'listen',
  'keepPrevious',
  'health',
  'strategy',
  'env',
  'stopGrace',
  'drainTimeout',
  'deployTimeout',
  'resources',
  'provider',
  'maxAge',
  'maxAgeJitter',
  'drift',
  'backoff',
  'secrets',
] as const;

/** The key of service `name` in environment `env`, for a control plane whose home environment is `home`. */
export function serviceKey(name: string, env: string, home: string): string {
  return env === home ? name : `${name}@${env}`;
}

/** The service name and environment a key stands for (see serviceKey). */
export function splitServiceKey(key: string, home: string): { name: string; env: string } {
  const at = key.lastIndexOf('@');
  return at < 0 ? { name: key, env: home } : { name: key.slice(0, at), env: key.slice(at + 1) };
}

/**
 * A service as written, with an environment's overrides as written laid over it: each key
 * the override names replaces the service's, but `env` is merged variable by variable (an
 * environment adds or changes variables; it does not have to repeat the others).
 */
export function withOverrides(service: Record<string, unknown>, override: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!override) return { ...service };
  const merged: Record<string, unknown> = { ...service, ...override };
  const base = service.env;
  const extra = override.env;
  if (isPlainObject(base) && isPlainObject(extra)) merged.env = { ...base, ...extra };
  return merged;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

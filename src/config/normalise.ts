import { dirname, isAbsolute, resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { parseImageRef } from '../oci/reference.js';
import { withOverrides } from './environments.js';
import { formatIssues } from './format-issues.js';
import { configSchema, type ParsedConfig, type ParsedImage, type ParsedService } from './schema.js';
import type { BakeStep, CopyStep, EnvironmentSpec, HealthSpec, ImageSpec, ImagoConfig, ServiceSpec } from './types.js';

/** Every default of the config, in one place. */
export const DEFAULTS = {
  from: { kind: 'scratch' },
  health: { interval: 10_000, timeout: 3_000, retries: 3, startPeriod: 0 },
  service: {
    replicas: 1,
    health: { interval: 1_000, timeout: 1_000, startPeriod: 0, startInterval: 100, healthyThreshold: 1, unhealthyThreshold: 3 },
    strategy: { kind: 'rolling', maxSurge: { kind: 'count', value: 1 }, maxUnavailable: { kind: 'count', value: 0 } },
    stopGrace: 10_000,
    drainTimeout: 30_000,
    deployTimeout: 120_000,
    resources: { memory: 1024 ** 3, pids: 1024 },
    provider: 'process',
    maxAgeJitter: 0.1,
    drift: 'replace',
    backoff: { initial: 1_000, max: 300_000, reset: 600_000 },
    protocol: 'http',
    keepPrevious: 0,
  },
  owner: { uid: 0, gid: 0 },
  shell: ['/bin/sh', '-c'],
} as const;

/** At most this many problems are listed; the rest are counted. */
const MAX_PROBLEMS = 20;

/**
 * Validates a raw config (as read from `file`) and normalises it: defaults, shorthands,
 * absolute contexts. Throws one ConfigError listing every problem, one per line.
 *
 * @example normaliseConfig({ images: { web: { copy: [{ src: 'app/', dest: '/app' }] } } }, '/srv/imago.yaml')
 */
export function normaliseConfig(raw: unknown, file: string): ImagoConfig {
  const path = resolve(file);
  raw = withoutExtensions(raw);
  const result = configSchema.safeParse(raw ?? {}, { reportInput: true });
  if (!result.success) throw new ConfigError(describeProblems(formatIssues(result.error.issues, raw ?? {})), { file });
  const config = buildConfig(result.data, path, raw as RawSections);
  const problems = Object.values(config.images).flatMap(checkImage);
  if (problems.length > 0) throw new ConfigError(describeProblems(problems), { file });
  return config;
}

/** Top-level keys starting with `x-` are the author's own (YAML anchors to reuse): imago ignores them. */
function withoutExtensions(raw: unknown): unknown {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return raw;
  return Object.fromEntries(Object.entries(raw).filter(([key]) => !key.startsWith('x-')));
}

/** Checks an image against the rest of its spec; returns problem lines. */
function checkImage(image: ImageSpec): string[] {
  if (image.from.kind !== 'image') return [];
  const ref = parseImageRef(image.from.ref);
  if (!('error' in ref) && ref.kind === 'tag' && ref.name === image.name && ref.tag === 'latest') {
    return [
      `images.${image.name}.from: expected another image, got "${image.from.ref}" (an image cannot build on its own latest bake; pin one, like "${image.name}:3")`,
    ];
  }
  return [];
}

/** Joins problem lines into one message: the line itself when alone, else a count and an indented list. */
export function describeProblems(lines: string[]): string {
  if (lines.length === 1) return lines[0]!;
  const shown = lines.slice(0, MAX_PROBLEMS).map((line) => `  ${line}`);
  if (lines.length > MAX_PROBLEMS) shown.push(`  ... and ${lines.length - MAX_PROBLEMS} more`);
  return [`${lines.length} problems:`, ...shown].join('\n');
}

/** The sections of a raw config that are kept as written (an environment's overrides are laid over the service as written). */
type RawSections = { environments?: Record<string, { services?: Record<string, Record<string, unknown>> | null } | null> | null } | undefined;

/** Builds the normalised config from a validated one (`raw`: the same, as written). */
function buildConfig(parsed: ParsedConfig, file: string, raw: RawSections): ImagoConfig {
  const root = dirname(file);
  const images: Record<string, ImageSpec> = {};
  for (const [name, image] of Object.entries(parsed.images ?? {})) images[name] = buildImage(name, image, root);
  const services: Record<string, ServiceSpec> = {};
  for (const [name, service] of Object.entries(parsed.services ?? {})) services[name] = buildService(name, service, root);
  const environments: Record<string, EnvironmentSpec> = {};
  for (const [name, environment] of Object.entries(parsed.environments ?? {})) {
    const keys = environment?.requireSignature?.keys.map((key) => resolve(root, key));
    environments[name] = { name, minSoak: environment?.minSoak ?? 0, requireSignature: keys ? { keys } : undefined, services: { ...(raw?.environments?.[name]?.services ?? {}) } };
  }
  const defaultEnvironment = parsed.defaultEnvironment ?? Object.keys(environments)[0];
  return { file, root, images, services, environments, defaultEnvironment };
}

/**
 * Service `name` as environment `env` runs it: the service as written (`written`, the raw
 * `services.<name>`) with the environment's overrides laid over it (see withOverrides),
 * validated and normalised, TLS paths resolved against the config's folder. `env` undefined:
 * the service as written. Returns the merged service as written (what a client sends the
 * server) and its normalised spec.
 */
export function serviceInEnvironment(config: ImagoConfig, written: Record<string, unknown>, name: string, env: string | undefined): { written: Record<string, unknown>; spec: ServiceSpec } {
  if (env === undefined) return { written, spec: config.services[name]! };
  const environment = config.environments[env];
  if (!environment) {
    const known = Object.keys(config.environments);
    throw new ConfigError(`unknown environment "${env}": expected ${known.length > 0 ? `one of ${known.join(', ')}` : 'one declared under environments (the config declares none)'}`, { file: config.file });
  }
  const merged = withOverrides(written, environment.services[name]);
  const result = configSchema.safeParse({ services: { [name]: merged } }, { reportInput: true });
  if (!result.success) throw new ConfigError(`service "${name}" in environment "${env}": ${describeProblems(formatIssues(result.error.issues, { services: { [name]: merged } }))}`, { file: config.file });
  return { written: merged, spec: buildService(name, result.data.services![name]!, config.root) };
}

/**
 * Builds one service with its defaults. `root` is the config file's folder, for relative TLS
 * file paths; without it (a service a client sent) they must be absolute.
 */
function buildService(name: string, service: ParsedService, root?: string): ServiceSpec {
  const d = DEFAULTS.service;
  const health = service.health;
  const strategy = service.strategy;
  return {
    name,
    image: service.image,
    replicas: service.replicas ?? d.replicas,
    port: service.port,
    listen: buildListen(name, service.listen, root),
    protocol: service.protocol ?? d.protocol,
    keepPrevious: service.keepPrevious ?? d.keepPrevious,
    health: health && {
      check: health.http !== undefined ? { kind: 'http', path: health.http } : health.command !== undefined ? { kind: 'command', command: health.command } : { kind: 'tcp' },
      interval: health.interval ?? d.health.interval,
      timeout: health.timeout ?? d.health.timeout,
      startPeriod: health.startPeriod ?? d.health.startPeriod,
      startInterval: health.startInterval ?? d.health.startInterval,
      healthyThreshold: health.healthyThreshold ?? d.health.healthyThreshold,
      unhealthyThreshold: health.unhealthyThreshold ?? d.health.unhealthyThreshold,
    },
    strategy:
      strategy === undefined || strategy === 'rolling'
        ? { ...d.strategy }
        : strategy === 'blue-green'
          ? { kind: 'blue-green' }
          : strategy.type === 'blue-green'
            ? { kind: 'blue-green' }
            : { kind: 'rolling', maxSurge: strategy.maxSurge ?? d.strategy.maxSurge, maxUnavailable: strategy.maxUnavailable ?? d.strategy.maxUnavailable },
    env: Object.entries(service.env ?? {}),
    volumes: { ...service.volumes },
    stopGrace: service.stopGrace ?? d.stopGrace,
    drainTimeout: service.drainTimeout ?? d.drainTimeout,
    deployTimeout: service.deployTimeout ?? d.deployTimeout,
    resources: { memory: service.resources?.memory ?? d.resources.memory, pids: service.resources?.pids ?? d.resources.pids },
    provider: service.provider ?? d.provider,
    maxAge: service.maxAge,
    maxAgeJitter: service.maxAgeJitter ?? d.maxAgeJitter,
    drift: service.drift ?? d.drift,
    backoff: { initial: service.backoff?.initial ?? d.backoff.initial, max: service.backoff?.max ?? d.backoff.max, reset: service.backoff?.reset ?? d.backoff.reset },
    secrets: Object.entries(service.secrets ?? {}).map(([secret, use]) => ('env' in use ? { name: secret, env: use.env } : { name: secret, file: use.file })),
  };
}

/** The router's address, its TLS files resolved against `root` (or checked absolute without one). */
function buildListen(name: string, listen: ParsedService['listen'], root: string | undefined): ServiceSpec['listen'] {
  if (listen === undefined) return undefined;
  if (!('address' in listen)) return listen;
  if (!listen.tls) return listen.address;
  const file = (key: 'cert' | 'key') => {
    const path = listen.tls![key];
    if (root !== undefined) return resolve(root, path);
    if (!isAbsolute(path)) throw new ConfigError(`services.${name}.listen.tls.${key}: expected an absolute path (the CLI resolves paths against the config file's folder), got "${path}"`);
    return path;
  };
  return { ...listen.address, tls: { cert: file('cert'), key: file('key') } };
}

/**
 * Validates and normalises one service as a client sent it (the `services.<name>` object of
 * a config file, as written): the same schema and defaults as the config file, so the server
 * normalises once, at its edge. Throws one ConfigError listing every problem, each with its
 * key path (`services.web.replicas: …`).
 */
export function normaliseService(name: string, raw: unknown): ServiceSpec {
  const result = configSchema.safeParse({ services: { [name]: raw } }, { reportInput: true });
  if (!result.success) throw new ConfigError(describeProblems(formatIssues(result.error.issues, { services: { [name]: raw } })));
  return buildService(name, result.data.services![name]!);
}

/** Builds one image spec: copy/run shorthands become steps (copies first, then runs). */
function buildImage(name: string, image: ParsedImage, root: string): ImageSpec {
  const steps: BakeStep[] = image.steps
    ? image.steps.map((step, i) => (step.copy ? buildCopy(step.copy, `steps[${i}].copy`) : { kind: 'run', command: step.run!, key: `steps[${i}].run` }))
    : [
        ...(image.copy ?? []).map((copy, i) => buildCopy(copy, `copy[${i}]`)),
        ...(image.run ?? []).map((command, i) => ({ kind: 'run' as const, command, key: `run[${i}]` })),
      ];
  return {
    name,
    context: resolve(root, image.context ?? '.'),
    from: image.from ?? { ...DEFAULTS.from },
    steps,
    env: Object.entries(image.env ?? {}),
    workdir: image.workdir,
    entrypoint: toArgv(image.entrypoint),
    cmd: toArgv(image.cmd),
    user: image.user,
    port: image.port,
    health: buildHealth(image.health),
    labels: { ...image.labels },
  };
}

/** A copy with its defaults. */
function buildCopy(copy: NonNullable<ParsedImage['copy']>[number], key: string): CopyStep {
  return {
    kind: 'copy',
    key,
    src: copy.src,
    dest: copy.dest,
    exclude: [...(copy.exclude ?? [])],
    mode: copy.mode,
    owner: copy.owner ?? { ...DEFAULTS.owner },
  };
}

/** A string command becomes `/bin/sh -c <string>`; an array is kept. */
function toArgv(command: string | string[] | undefined): string[] | undefined {
  if (command === undefined) return undefined;
  return typeof command === 'string' ? [...DEFAULTS.shell, command] : [...command];
}

/** A health check with its timing defaults. */
function buildHealth(health: ParsedImage['health']): HealthSpec | undefined {
  if (!health) return undefined;
  const timing = {
    interval: health.interval ?? DEFAULTS.health.interval,
    timeout: health.timeout ?? DEFAULTS.health.timeout,
    retries: health.retries ?? DEFAULTS.health.retries,
    startPeriod: health.startPeriod ?? DEFAULTS.health.startPeriod,
  };
  return health.http !== undefined ? { ...timing, kind: 'http', path: health.http } : { ...timing, kind: 'command', command: health.command! };
}

import type { BakeStep, HealthSpec, ImageSpec } from '../config/types.js';
import type { Digest } from '../oci/digest.js';
import { EPOCH } from '../oci/layer-writer.js';
import type { ImageConfig, ImageRuntimeConfig } from '../oci/types.js';

/** The PATH an image gets when neither its base nor its spec sets one. */
export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Label keys under which a baked image records where it came from. */
export const ProvenanceLabel = {
  spec: 'dev.imago.spec',
  context: 'dev.imago.context',
  base: 'dev.imago.base',
  version: 'dev.imago.version',
  health: 'dev.imago.health',
} as const;

/** Maps Node's architecture names to OCI's. */
export function ociArchitecture(arch: string = process.arch): string {
  return ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[arch] ?? arch;
}

/** A one-line description of a step, as recorded in the image history. */
export function describeStep(step: BakeStep): string {
  if (step.kind === 'copy') return `copy ${step.src} ${step.dest}`;
  return `run ${typeof step.command === 'string' ? step.command : JSON.stringify(step.command)}`;
}

/** What the image config is built from. */
export interface ConfigInputs {
  spec: ImageSpec;
  base: ImageConfig | undefined;
  /** diff_ids of every layer, base layers first. */
  diffIds: Digest[];
  /** History lines of the layers this bake added (one per added layer). */
  history: string[];
  provenance: Record<string, string>;
}

/**
 * Builds the OCI image config of a bake: the base's runtime config overlaid with the spec
 * (Docker's rules: setting an entrypoint drops the base's cmd), provenance labels, a fixed
 * creation time and a history line per layer. Pure: the same inputs give the same bytes.
 */
export function buildImageConfig(inputs: ConfigInputs): ImageConfig {
  const { spec, base } = inputs;
  const inherited: ImageRuntimeConfig = base?.config ?? {};
  const env = mergeEnv(inherited.Env, spec.env).map(([key, value]) => `${key}=${value}`);
  const config: ImageRuntimeConfig = { Env: env };
  const entrypoint = spec.entrypoint ?? inherited.Entrypoint;
  const cmd = spec.cmd ?? (spec.entrypoint ? undefined : inherited.Cmd);
  if (entrypoint) config.Entrypoint = entrypoint;
  if (cmd) config.Cmd = cmd;
  const workdir = spec.workdir ?? inherited.WorkingDir;
  if (workdir) config.WorkingDir = workdir;
  const user = spec.user ?? inherited.User;
  if (user) config.User = user;
  const ports = { ...(inherited.ExposedPorts ?? {}) };
  if (spec.port) ports[`${spec.port}/tcp`] = {};
  if (Object.keys(ports).length > 0) config.ExposedPorts = sortKeys(ports);
  const labels: Record<string, string> = { ...(inherited.Labels ?? {}), ...spec.labels, ...inputs.provenance };
  if (spec.health) labels[ProvenanceLabel.health] = JSON.stringify(spec.health);
  config.Labels = sortKeys(labels);
  const healthcheck = spec.health ? dockerHealthcheck(spec.health) : inherited.Healthcheck;
  if (healthcheck) config.Healthcheck = healthcheck;

  const created = EPOCH.toISOString();
  const baseHistory = base?.history ?? [];
  return {
    created,
    architecture: base?.architecture ?? ociArchitecture(),
    os: base?.os ?? 'linux',
    config,
    rootfs: { type: 'layers', diff_ids: inputs.diffIds },
    history: [...baseHistory, ...inputs.history.map((line) => ({ created, created_by: `imago: ${line}` }))],
  };
}

/**
 * An image's environment: the base's `KEY=value` list (or the default PATH), overlaid with
 * the spec's pairs by key, in order. The image config, run steps and instances use it.
 */
export function mergeEnv(base: string[] | undefined, overrides: Array<[string, string]>): Array<[string, string]> {
  const out = new Map<string, string>();
  for (const item of base ?? [DEFAULT_PATH]) {
    const eq = item.indexOf('=');
    if (eq > 0) out.set(item.slice(0, eq), item.slice(eq + 1)); // an entry without NAME= is no variable
  }
  for (const [key, value] of overrides) out.set(key, value);
  return [...out];
}

function dockerHealthcheck(health: HealthSpec): ImageRuntimeConfig['Healthcheck'] | undefined {
  if (health.kind !== 'command') return undefined;
  const test = typeof health.command === 'string' ? ['CMD-SHELL', health.command] : ['CMD', ...health.command];
  const ns = (ms: number) => ms * 1_000_000;
  return { Test: test, Interval: ns(health.interval), Timeout: ns(health.timeout), StartPeriod: ns(health.startPeriod), Retries: health.retries };
}

function sortKeys<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

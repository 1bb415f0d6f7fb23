/**
 * The normalised configuration: what the schema produces after defaults, duration parsing
 * and path resolution. Everything downstream (baker, planner, providers) reads only these
 * types, never the raw file.
 */

/** A duration in milliseconds (parsed once from "5s", "1m30s", "250ms" or a number of seconds). */
export type Millis = number;

/** Where an image's first layers come from. */
export type BaseSpec =
  | { kind: 'scratch' }
  /** Another image in the store, by `name:tag`, `name@sha256:…` or `sha256:…`. */
  | { kind: 'image'; ref: string }
  /** Host executables (names looked up on PATH, or absolute paths) with their shared-library closure. */
  | { kind: 'host'; executables: string[] };

/** Copies files from the build context into the image. */
export interface CopyStep {
  kind: 'copy';
  /** Where the step was written, for messages: `copy[1]` or `steps[3].copy`. Not part of any hash. */
  key: string;
  /** Path relative to the build context, as written (for messages and cache keys). */
  src: string;
  /** Absolute path inside the image. A trailing "/" means "into this folder". */
  dest: string;
  /** Glob patterns (picomatch, relative to `src` when it is a folder) of files to leave out. */
  exclude: string[];
  /** Octal permission override for copied files (folders stay 0755), or undefined to keep x bits. */
  mode: number | undefined;
  /** Numeric owner for copied entries; default 0:0. */
  owner: { uid: number; gid: number };
}

/** Runs a command at bake time inside a sandbox whose root is the image so far. */
export interface RunStep {
  kind: 'run';
  /** Where the step was written, for messages: `run[0]` or `steps[2].run`. Not part of any hash. */
  key: string;
  /** Shell form (run by /bin/sh -c) when a string; exec form when an array. */
  command: string | string[];
}

/** One step of an image, in order. */
export type BakeStep = CopyStep | RunStep;

/** An HTTP or command health check. */
export type HealthSpec = {
  interval: Millis;
  timeout: Millis;
  retries: number;
  startPeriod: Millis;
} & ({ kind: 'http'; path: string } | { kind: 'command'; command: string | string[] });

/** A normalised image spec: the recipe an image is baked from. */
export interface ImageSpec {
  /** The image's name in the store (the key under `images`). */
  name: string;
  /** Absolute path of the build context (default: the config file's folder). */
  context: string;
  from: BaseSpec;
  steps: BakeStep[];
  /** Environment, in the order given. */
  env: Array<[string, string]>;
  workdir: string | undefined;
  entrypoint: string[] | undefined;
  cmd: string[] | undefined;
  /** `uid`, `uid:gid` or a name the image's /etc/passwd knows. */
  user: string | undefined;
  port: number | undefined;
  health: HealthSpec | undefined;
  labels: Record<string, string>;
}

/** A service's health check. With neither http nor command, a TCP connect to the port. */
export interface ServiceHealth {
  check: { kind: 'http'; path: string } | { kind: 'command'; command: string | string[] } | { kind: 'tcp' };
  interval: Millis;
  timeout: Millis;
  startPeriod: Millis;
  /** The time between probes during the start period, until the first pass (Docker's --health-start-interval). */
  startInterval: Millis;
  /** Passes in a row that make an instance healthy. */
  healthyThreshold: number;
  /** Failures in a row that make it unhealthy. */
  unhealthyThreshold: number;
}

/** How a deploy replaces a service's fleet. */
export type StrategySpec =
  | { kind: 'rolling'; maxSurge: import('../core/count.js').Count; maxUnavailable: import('../core/count.js').Count }
  | { kind: 'blue-green' };

/** A normalised service: a named fleet of identical instances of one image. */
export interface ServiceSpec {
  name: string;
  /** Image reference as written (a stored image, or one of this config's images). */
  image: string;
  replicas: number;
  /** The port the app listens on (passed as PORT); undefined: the image's port. */
  port: number | undefined;
  /** Where the service's router listens; undefined: chosen at the first deploy and kept. */
  listen: { host: string; port: number; tls?: { cert: string; key: string } | undefined } | undefined;
  /** What the router speaks: `http` (balanced by request) or `tcp` (by connection). */
  protocol: 'http' | 'tcp';
  /** How long the previous release's instances stay up, unrouted, after a deploy (0: not at all). */
  keepPrevious: Millis;
  /** undefined: the image's health check, else a TCP connect to the port. */
  health: ServiceHealth | undefined;
  strategy: StrategySpec;
  env: Array<[string, string]>;
  /** Named persistent volumes: name → mount path. */
  volumes: Record<string, string>;
  stopGrace: Millis;
  drainTimeout: Millis;
  /** How long new instances may take to become healthy before the deploy is aborted. */
  deployTimeout: Millis;
  /** Limits of one instance (the provider enforces them). */
  resources: { memory: number; pids: number };
  provider: ProviderName;
  /** Instances older than this are replaced (phoenix); undefined: never. */
  maxAge: Millis | undefined;
  /** How far each instance's max age strays from `maxAge`, as a fraction (0.1: ±10%). */
  maxAgeJitter: number;
  /** What the guard does with an instance that drifted from its release. */
  drift: 'replace' | 'report';
  /** How a release whose instances keep failing backs off before each next start. */
  backoff: { initial: Millis; max: Millis; reset: Millis };
  /** The secrets of its environment it gets at start: each as an environment variable, or as a file under /run/secrets (mode 0400). */
  secrets: ServiceSecret[];
}

/** One secret a service's instances get, by its name in the environment's secrets. */
export type ServiceSecret = { name: string; env: string } | { name: string; file: string };

/** Where a service's instances run. */
export const PROVIDERS = ['process', 'docker'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

/** One environment of a config: what it changes of each service (as written), and its promotion policy. */
export interface EnvironmentSpec {
  name: string;
  /** How long a release must have been live in the environment it is promoted from (0: no wait). */
  minSoak: Millis;
  /** Deploys and promotions into it need a signature by one of these public keys (absolute paths of PEM files). */
  requireSignature: { keys: string[] } | undefined;
  /** Per service, the keys this environment changes, as written in the config (merged over the service before it is normalised). */
  services: Record<string, Record<string, unknown>>;
}

/** The whole normalised configuration. Providers join later. */
export interface ImagoConfig {
  /** Absolute path of the file it was loaded from. */
  file: string;
  /** Folder of that file; relative paths in it are relative to this. */
  root: string;
  images: Record<string, ImageSpec>;
  /** Each service as written at the top level: what every environment starts from. */
  services: Record<string, ServiceSpec>;
  /** The environments declared (none: every service runs in the control plane's home environment). */
  environments: Record<string, EnvironmentSpec>;
  /** Where a command that names no environment goes: `defaultEnvironment`, else the first declared; undefined when none is. */
  defaultEnvironment: string | undefined;
}

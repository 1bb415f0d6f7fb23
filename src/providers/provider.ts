import type { Digest } from '../oci/digest.js';

/** Labels every instance carries: how a provider finds what runs, and what it is. */
export const Label = {
  service: 'imago.service',
  release: 'imago.release',
  env: 'imago.env',
  digest: 'imago.digest',
} as const;

/** What an instance is started from. Everything but `id` comes from the release. */
export interface InstanceSpec {
  /** Unique, chosen by the caller (see newInstanceId). */
  id: string;
  digest: Digest;
  labels: Record<string, string>;
  /** The port the app must listen on (passed as PORT); the provider makes it reachable on loopback. */
  port: number;
  env: Array<[string, string]>;
  /** Named persistent volumes: the provider keeps `name`'s data across instances, mounted at `path`. */
  volumes: Array<{ name: string; path: string }>;
}

/** One instance as the provider sees it. */
export interface ProviderInstance {
  id: string;
  labels: Record<string, string>;
  digest: Digest;
  state: 'running' | 'exited';
  /** Where the app answers: host and port on this machine's loopback. */
  address: { host: string; port: number };
  startedAt: number;
  exitCode: number | undefined;
  /** File holding the instance's stdout and stderr; it outlives the instance. */
  logFile: string;
}

/**
 * Where instances run. One small interface; every provider passes one shared test suite
 * (test/providers/provider-suite.ts). Instances are never changed after `create`: a
 * deploy creates new ones and destroys old ones.
 */
export interface Provider {
  readonly name: string;
  /** Makes an image from the store runnable here (idempotent, cheap when already done). */
  loadImage(digest: Digest): Promise<void>;
  /** Starts an instance. Returns once it runs (its health is the caller's to check). */
  create(spec: InstanceSpec): Promise<ProviderInstance>;
  /** Stops an instance (SIGTERM, then SIGKILL after `graceMs`) and removes it; its log stays. */
  destroy(id: string, options: { graceMs: number }): Promise<void>;
  /** Every instance this provider knows, running or exited, optionally only those with `labels`. */
  list(labels?: Record<string, string>): Promise<ProviderInstance[]>;
  /** One instance, or undefined. */
  inspect(id: string): Promise<ProviderInstance | undefined>;
}

/** A new instance id: `<service>-<release>-<6 random hex>`. */
export function newInstanceId(service: string, release: number, random: string): string {
  return `${service.replace(/[^a-z0-9-]/g, '-')}-r${release}-${random}`;
}

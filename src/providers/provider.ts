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
  /**
   * The port the app must listen on. The provider passes it as PORT, and the address to bind
   * as HOST (127.0.0.1 on the host's network, 0.0.0.0 inside a container's own network), and
   * makes it reachable on this machine's loopback.
   */
  port: number;
  /**
   * The port the app listens on inside its own network namespace, for providers that give it
   * one (docker): the provider maps `port` on loopback to it and passes it as PORT. Absent,
   * or on the host's network (process): `port`.
   */
  appPort?: number;
  env: Array<[string, string]>;
  /** Named persistent volumes: the provider keeps `name`'s data across instances, mounted at `path`. */
  volumes: Array<{ name: string; path: string }>;
  /** Limits: memory in bytes, and processes (threads count too). Absent: the provider's defaults. */
  resources?: { memory: number; pids: number };
  /**
   * Secrets, in clear: each an environment variable or a file under /run/secrets (mode 0400,
   * owned by the image's user). A provider never writes a value where anyone but the instance
   * reads it: not a command line, a file of the state folder, a log, or what its engine shows.
   */
  secrets?: InstanceSecret[];
}

/** One secret of an instance, with its value. */
export type InstanceSecret = ({ env: string } | { file: string }) & { name: string; value: Buffer };

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
  /**
   * What was done to the instance from outside imago since it started (a `docker exec`, a
   * pause, a stop), one line each, oldest first; empty when it is as it was created. An
   * instance that drifted is no longer what its image says: the guard replaces it.
   */
  drift: string[];
  /**
   * It carries imago's labels but this home did not make it (a container started by hand
   * with imago's labels): reported as unmanaged, never routed, stopped or adopted.
   */
  foreign?: boolean;
}

/** What an instance uses: CPU time since it started, and memory now. */
export interface InstanceUsage {
  cpuSeconds: number;
  memoryBytes: number;
}

/** The two streams an instance prints on. */
export type OutputStream = 'stdout' | 'stderr';

/** One read of an instance's output: the bytes read, and how many the stream holds in all. */
export interface OutputRead {
  /** Bytes read into the buffer, from the position asked for. */
  bytes: number;
  /** The stream's length now (read or not): `size - position` bytes wait to be read. */
  size: number;
}

/** Something a provider saw happen to an instance, soon after it happened. */
export interface ProviderEvent {
  id: string;
  /** `exited`: it stopped running; `changed`: something was done to it (drift), or it appeared. */
  kind: 'exited' | 'changed';
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
  /** Kills an instance at once, as a crash or a power cut would (SIGKILL, no grace); it stays listed, exited, until destroyed. */
  kill(id: string): Promise<void>;
  /**
   * Calls `listener` soon after an instance exits or is changed from outside (optional: the
   * control loop's timer finds the same a little later). Returns the function that stops it.
   */
  watch?(listener: (event: ProviderEvent) => void): () => void;
  /**
   * The CPU and memory of running instances among `ids` (optional; those it cannot read are
   * left out): for `/metrics`.
   */
  usage?(ids: string[]): Promise<Map<string, InstanceUsage>>;
  /**
   * Reads what instance `id` printed on `stream`, from byte `position` on, into `buffer` (at
   * most its length). A provider keeps each stream, in the order printed, from the instance's
   * start until `forgetOutput`, past its end: readers keep their own positions, so one that
   * stops and starts again reads on, and an instance never waits for a reader. Once `destroy`
   * resolved nothing more is added (docker: once its last lines are copied from the engine).
   * An unknown instance or one that printed nothing reads as `{ bytes: 0, size: 0 }`. It
   * works after `close` too (the last lines are read after the provider let go of the rest).
   */
  readOutput(id: string, stream: OutputStream, position: number, buffer: Buffer): Promise<OutputRead>;
  /** Lets go of an instance's output (it ended, and its reader has all of it). */
  forgetOutput(id: string): Promise<void>;
  /** Lets go of what this object holds (log streams, connections); instances keep running. */
  close(): Promise<void>;
}

/** A new instance id: `<service>-<release>-<6 random hex>`. */
export function newInstanceId(service: string, release: number, random: string): string {
  return `${service.replace(/[^a-z0-9-]/g, '-')}-r${release}-${random}`;
}

import { join } from 'node:path';
import { reasonOf } from '../errors.js';
import type { OutputStream, Provider } from '../providers/provider.js';
import { FINAL_INSTANCE_STATES, instanceLabels } from '../state/instances.js';
import type { Db } from '../store/db.js';
import { LogCollector, type CollectorLimits, type LogSource } from './collector.js';
import { LogStore, type LogRetention } from './log-store.js';
import type { SyslogTarget } from './syslog.js';
import { SyslogForwarder } from './syslog-forwarder.js';

/** What a control plane's log collection keeps, and how often it looks. */
export interface LogCollectionOptions {
  retention?: Partial<LogRetention>;
  limits?: Partial<CollectorLimits>;
  /** Between passes when nothing is waiting (default 200 ms). */
  intervalMs?: number;
  /** Between retention cuts (default 60 s). */
  retainEveryMs?: number;
  now?: () => number;
  /** How long after an instance ended its output is read to its end and let go (default 120 s). */
  settleMs?: number;
  /** Forward every stored line to this syslog server (RFC 5424 over TCP or TLS). */
  forward?: { target: SyslogTarget; ca?: string | undefined };
}

/** Seven days, one GiB: what the store keeps unless told otherwise. */
export const DEFAULT_RETENTION: LogRetention = { maxAgeMs: 7 * 24 * 3600_000, maxBytes: 1024 ** 3 };

/**
 * An instance's output grows until a while after it ended (the docker provider copies the
 * engine's last lines as it destroys the container): read to its end only after this long is
 * it done.
 */
const SETTLE_MS = 120_000;

/** The provider that runs a service's instances, by its name (the control plane's registry). */
export type ProviderLookup = (name: string) => Promise<Provider>;

const STREAMS: OutputStream[] = ['stdout', 'stderr'];

/**
 * A control plane's logs: the store (`<home>/logs.db`) and the collector that fills it from
 * every instance's stdout and stderr (read through its provider's `readOutput`), labelled
 * from the state database, on a timer of its own. Retention runs every minute.
 */
export class LogCollection {
  readonly store: LogStore;
  private readonly collector: LogCollector;
  private readonly retention: LogRetention;
  private timer: NodeJS.Timeout | undefined;
  private retainTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly now: () => number;
  /** The last pass's failure (a file that could not be read), for status. */
  lastError: string | undefined;
  private lastPassAt = 0;
  /** The pass running now: a reader asking for a pass waits for it rather than starting another. */
  private passing: Promise<boolean> | undefined;
  /** Lines stored since this collection started. */
  collected = 0;
  /** The syslog forwarder, when one is configured. */
  readonly forwarder: SyslogForwarder | undefined;

  constructor(
    home: string,
    private readonly db: Db,
    private readonly providers: ProviderLookup,
    /** The environment of a service (its key). */
    private readonly envOf: (service: string) => string,
    private readonly options: LogCollectionOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.retention = { ...DEFAULT_RETENTION, ...options.retention };
    this.store = new LogStore(join(home, 'logs.db'));
    this.collector = new LogCollector(this.store, options.limits, this.now);
    this.forwarder = options.forward ? new SyslogForwarder(this.store, options.forward.target, { ca: options.forward.ca }) : undefined;
  }

  /** Starts collecting on a timer (and cutting by retention). */
  start(): void {
    const pass = async () => {
      if (this.closed) return;
      const more = await this.pass();
      if (this.closed) return;
      this.timer = setTimeout(() => void pass(), more ? 0 : (this.options.intervalMs ?? 200));
      this.timer.unref();
    };
    void pass();
    this.retainTimer = setInterval(() => this.retain(), this.options.retainEveryMs ?? 60_000);
    this.retainTimer.unref();
    this.retain();
    this.forwarder?.start();
  }

  /** One pass over every instance's streams; true when some stream has more waiting than one pass reads. Never throws. */
  pass(): Promise<boolean> {
    this.passing ??= this.passOnce().finally(() => (this.passing = undefined));
    return this.passing;
  }

  private async passOnce(): Promise<boolean> {
    this.lastPassAt = this.now();
    try {
      const { sources, providers, errors } = await this.sources();
      const result = await this.collector.collect(sources);
      this.collected += result.lines;
      errors.push(...result.errors);
      // Every line of an ended instance's streams is in the store: its provider lets go of them, so nothing is kept twice.
      const finished = new Set(result.finished);
      for (const [instance, provider] of providers) {
        if (!STREAMS.every((stream) => finished.has(`${instance}:${stream}`) || this.collector.isDone(`${instance}:${stream}`))) continue;
        if (!STREAMS.some((stream) => finished.has(`${instance}:${stream}`))) continue;
        try {
          await provider.forgetOutput(instance);
          for (const stream of STREAMS) this.store.forgetSource(`${instance}:${stream}`);
        } catch (error) {
          errors.push(`${instance}: ${reasonOf(error)}`);
        }
      }
      this.report(errors.length > 0 ? errors.join('; ') : undefined);
      return result.more;
    } catch (error) {
      this.report(reasonOf(error));
      return false;
    }
  }

  /** Keeps the last failure, and says each new one on the server's stderr (its log) once. */
  private report(error: string | undefined): void {
    if (error && error !== this.lastError) process.stderr.write(`imago: log collection: ${error}\n`);
    this.lastError = error;
  }

  /** A pass now, unless one ran in the last pass interval (a reader asking often never holds the event loop more than the timer would). */
  async passSoon(): Promise<void> {
    if (this.passing) await this.passing;
    else if (this.now() - this.lastPassAt >= (this.options.intervalMs ?? 200)) await this.pass();
  }

  /** Cuts what retention no longer keeps; returns how many lines went. */
  retain(): number {
    try {
      return this.store.retain(this.retention, this.now());
    } catch (error) {
      this.report(`retention: ${reasonOf(error)}`);
      return 0;
    }
  }

  /** Reads what is waiting, ends the forwarder's connection, then stops the timers and closes the store. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.retainTimer);
    if (this.passing) await this.passing;
    for (let i = 0; i < 100 && (await this.pass()); i++);
    await this.forwarder?.close();
    this.store.close();
  }

  /** Both streams of every recorded instance, each read through the provider of its service. */
  private async sources(): Promise<{ sources: LogSource[]; providers: Map<string, Provider>; errors: string[] }> {
    const now = this.now();
    const sources: LogSource[] = [];
    const providers = new Map<string, Provider>();
    const byName = new Map<string, Promise<Provider>>();
    const errors: string[] = [];
    for (const i of instanceLabels(this.db)) {
      const key = i.provider;
      if (!byName.has(key)) byName.set(key, this.providers(key));
      let provider: Provider;
      try {
        provider = await byName.get(key)!;
      } catch (error) {
        // A provider that cannot be made now (dockerd down): its instances are read on later, from where they stopped.
        const message = `the ${key} provider: ${reasonOf(error)}`;
        if (!errors.includes(message)) errors.push(message);
        continue;
      }
      providers.set(i.id, provider);
      const ended = FINAL_INSTANCE_STATES.includes(i.state) && i.endedAt !== undefined && now - Date.parse(i.endedAt) > (this.options.settleMs ?? SETTLE_MS);
      for (const stream of STREAMS) {
        sources.push({ key: `${i.id}:${stream}`, read: (position, buffer) => provider.readOutput(i.id, stream, position, buffer), service: i.service, env: this.envOf(i.service), release: i.version, instance: i.id, stream, ended });
      }
    }
    return { sources, providers, errors };
  }
}

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { reasonOf } from '../errors.js';
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
  /** How long after an instance ended its file is read to its end and removed (default 120 s). */
  settleMs?: number;
  /** Forward every stored line to this syslog server (RFC 5424 over TCP or TLS). */
  forward?: { target: SyslogTarget; ca?: string | undefined };
}

/** Seven days, one GiB: what the store keeps unless told otherwise. */
export const DEFAULT_RETENTION: LogRetention = { maxAgeMs: 7 * 24 * 3600_000, maxBytes: 1024 ** 3 };

/**
 * An instance's output file is written until a while after it ended (the docker provider
 * copies the engine's last lines as it destroys the container): read to its end only after
 * this long is it done.
 */
const SETTLE_MS = 120_000;

/**
 * A control plane's logs: the store (`<home>/logs.db`) and the collector that fills it from
 * every instance's output file (`<home>/logs/<id>.log`, written by the providers), labelled
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
  /** Lines stored since this collection started. */
  collected = 0;
  /** The syslog forwarder, when one is configured. */
  readonly forwarder: SyslogForwarder | undefined;

  constructor(
    private readonly home: string,
    private readonly db: Db,
    private readonly env: string,
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
    const pass = () => {
      if (this.closed) return;
      const more = this.pass();
      this.timer = setTimeout(pass, more ? 0 : (this.options.intervalMs ?? 200));
      this.timer.unref();
    };
    pass();
    this.retainTimer = setInterval(() => this.retain(), this.options.retainEveryMs ?? 60_000);
    this.retainTimer.unref();
    this.retain();
    this.forwarder?.start();
  }

  /** One pass over every instance's file; true when some file has more waiting than one pass reads. */
  pass(): boolean {
    this.lastPassAt = this.now();
    try {
      const result = this.collector.collect(this.sources());
      this.collected += result.lines;
      // Every line of these is in the store: the files go, so the output is not kept twice.
      for (const file of result.finished) {
        try {
          rmSync(file, { force: true });
          this.store.forgetSource(file);
        } catch (error) {
          result.errors.push(`${file}: ${reasonOf(error)}`);
        }
      }
      this.report(result.errors.length > 0 ? result.errors.join('; ') : undefined);
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
  passSoon(): void {
    if (this.now() - this.lastPassAt >= (this.options.intervalMs ?? 200)) this.pass();
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
    for (let i = 0; i < 100 && this.pass(); i++);
    await this.forwarder?.close();
    this.store.close();
  }

  private sources(): LogSource[] {
    const now = this.now();
    return instanceLabels(this.db).map((i) => ({
      file: join(this.home, 'logs', `${i.id}.log`),
      service: i.service,
      env: this.env,
      release: i.version,
      instance: i.id,
      // Both providers keep an instance's stdout and stderr in one file, in the order written.
      stream: 'output' as const,
      ended: FINAL_INSTANCE_STATES.includes(i.state) && i.endedAt !== undefined && now - Date.parse(i.endedAt) > (this.options.settleMs ?? SETTLE_MS),
    }));
  }
}

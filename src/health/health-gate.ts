import type { ServiceHealth } from '../config/types.js';
import { systemClock, type Clock } from '../util/clock.js';
import { loopbackAddress } from './loopback.js';
import { probeOnce, type HealthCheck, type ProbeAddress, type ProbeOptions, type ProbeResult, type RunCommand } from './probe.js';

/** Probes an instance once (probeOnce, or a fake provider's stand-in in scenario tests). */
export type Prober = (check: HealthCheck, address: ProbeAddress, timeoutMs: number, options: ProbeOptions) => Promise<ProbeResult>;

/** Where an instance stands: not decided yet, or the verdict of its last run of results. */
export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';

/** The gate's whole state: the status and the current run of passes or counted failures. */
export interface HealthState {
  status: HealthStatus;
  /** Passes in a row, up to the last result. */
  passes: number;
  /** Counted failures in a row (failures inside the start period are not counted). */
  failures: number;
}

/** The state of an instance no probe has reached yet. */
export const initialHealth: HealthState = Object.freeze({ status: 'starting', passes: 0, failures: 0 });

/** What the gate needs from a service's health settings. */
export type GateSettings = Pick<ServiceHealth, 'startPeriod' | 'healthyThreshold' | 'unhealthyThreshold'>;

/**
 * The health gate's one decision: the state after `result`. Pure.
 *
 * - A pass adds to the run of passes and ends any run of failures; `healthyThreshold`
 *   passes in a row make the instance healthy.
 * - A failure ends the run of passes. If it started (`result.at`) within `startPeriod` of
 *   `startedAt`, it is not counted and changes no status: an app may fail while it boots.
 *   Otherwise it adds to the run of failures; `unhealthyThreshold` in a row make it unhealthy.
 * - Verdicts are not final: a healthy instance that fails `unhealthyThreshold` times in a row
 *   becomes unhealthy, and an unhealthy one that passes `healthyThreshold` times in a row
 *   becomes healthy again. A deploy acts on the first verdict (see waitForVerdict); a watcher
 *   of a serving instance acts on every change.
 *
 * @example
 * nextHealth(initialHealth, { ok: true, at: 0, ms: 1, detail: '' }, { startPeriod: 0, healthyThreshold: 1, unhealthyThreshold: 3 }, 0)
 * // { status: 'healthy', passes: 1, failures: 0 }
 */
export function nextHealth(state: HealthState, result: ProbeResult, health: GateSettings, startedAt: number): HealthState {
  if (result.ok) {
    const passes = state.passes + 1;
    return { status: passes >= Math.max(1, health.healthyThreshold) ? 'healthy' : state.status, passes, failures: 0 };
  }
  if (result.at < startedAt + health.startPeriod) return { status: state.status, passes: 0, failures: state.failures };
  const failures = state.failures + 1;
  return { status: failures >= Math.max(1, health.unhealthyThreshold) ? 'unhealthy' : state.status, passes: 0, failures };
}

/** How many probe results a watcher keeps. */
export const TRANSCRIPT_SIZE = 50;

/** What a HealthWatcher needs to probe one instance. */
export interface HealthWatcherOptions {
  health: ServiceHealth;
  /** Where the instance answers; must be loopback. */
  address: ProbeAddress;
  /** When the instance started, for the start period (default: now). */
  startedAt?: number;
  /** The provider's exec, for `command` checks. */
  runCommand?: RunCommand;
  /** Time and timers (default: the system's). */
  clock?: Clock;
  /** How one probe is made (default: probeOnce). */
  probe?: Prober;
}

/** Called when the status changes, with the result that changed it. */
export type ChangeListener = (status: HealthStatus, result: ProbeResult) => void;
/** Called after every probe, with the result and the state it led to. */
export type ProbeListener = (result: ProbeResult, state: HealthState) => void;

/**
 * Probes one instance every `health.interval` and runs the results through `nextHealth`.
 * The first probe starts at once; each next one `interval` after the previous one ended
 * (a timer chain: probes never overlap) — or `startInterval` after it while the instance is
 * in its start period and has not passed yet, so it is found healthy within about that long
 * of answering (Docker's --health-start-interval). Its timers are unref'd, so a watcher never
 * keeps a process alive. Throws an ImagoError at once for a non-loopback address.
 *
 * @example
 * const watcher = new HealthWatcher({ health, address: instance.address, startedAt: instance.startedAt });
 * const verdict = await waitForVerdict(watcher, spec.deployTimeout);
 * watcher.stop();
 */
export class HealthWatcher {
  private state: HealthState = initialHealth;
  private readonly results: ProbeResult[] = [];
  private readonly changeListeners = new Set<ChangeListener>();
  private readonly probeListeners = new Set<ProbeListener>();
  private readonly stopListeners = new Set<() => void>();
  private readonly inFlight = new AbortController();
  private cancel: (() => void) | undefined;
  private stopped = false;
  private readonly check: HealthCheck;
  private readonly startedAt: number;
  private readonly clock: Clock;
  private readonly probeWith: Prober;
  private firstHealthyAt: number | undefined;
  /** When this watcher began (the gate's own clock: an adopted instance starts its gate here). */
  readonly since: number;

  constructor(private readonly options: HealthWatcherOptions) {
    loopbackAddress(options.address.host);
    this.check = options.health.check;
    this.clock = options.clock ?? systemClock;
    this.probeWith = options.probe ?? probeOnce;
    this.since = this.clock.now();
    this.startedAt = options.startedAt ?? this.since;
    this.schedule(0);
  }

  /** When the instance first passed its gate under this watcher (ms since the epoch). */
  get healthyAt(): number | undefined {
    return this.firstHealthyAt;
  }

  /** The current status. */
  get status(): HealthStatus {
    return this.state.status;
  }

  /** The current state, with the runs of passes and failures. */
  get current(): HealthState {
    return this.state;
  }

  /** The last TRANSCRIPT_SIZE probe results, oldest first (a copy). */
  get transcript(): ProbeResult[] {
    return [...this.results];
  }

  /** Whether stop() was called. */
  get isStopped(): boolean {
    return this.stopped;
  }

  /** Calls `listener` on every status change; returns the function that unsubscribes it. */
  onChange(listener: ChangeListener): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** Calls `listener` after every probe; returns the function that unsubscribes it. */
  onProbe(listener: ProbeListener): () => void {
    this.probeListeners.add(listener);
    return () => this.probeListeners.delete(listener);
  }

  /** Calls `listener` once when the watcher stops (at once if it already has). */
  onStop(listener: () => void): () => void {
    if (this.stopped) {
      listener();
      return () => undefined;
    }
    this.stopListeners.add(listener);
    return () => this.stopListeners.delete(listener);
  }

  /** Stops probing: no probe starts after this, one in flight is aborted and its result dropped. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.cancel?.();
    this.inFlight.abort();
    for (const listener of [...this.stopListeners]) listener();
    this.stopListeners.clear();
  }

  /** Arms the next probe `delay` ms from now. */
  private schedule(delay: number): void {
    this.cancel = this.clock.setTimer(() => void this.probe(), delay);
  }

  /** The time until the next probe: quick while in the start period and not passed yet. */
  private nextDelay(): number {
    const { health } = this.options;
    const booting = this.state.status === 'starting' && this.clock.now() < this.startedAt + health.startPeriod;
    return booting ? Math.min(health.startInterval ?? health.interval, health.interval) : health.interval;
  }

  /** Probes once, records the result, tells the listeners, arms the next probe. */
  private async probe(): Promise<void> {
    const { health, address, runCommand } = this.options;
    const result = await this.probeWith(this.check, address, health.timeout, { runCommand, signal: this.inFlight.signal }).catch(
      (error: unknown): ProbeResult => ({ ok: false, at: this.clock.now(), ms: 0, detail: error instanceof Error ? error.message : String(error) }),
    );
    if (this.stopped) return;
    const before = this.state.status;
    this.state = nextHealth(this.state, result, health, this.startedAt);
    if (this.state.status === 'healthy' && this.firstHealthyAt === undefined) this.firstHealthyAt = result.at + result.ms;
    this.results.push(result);
    if (this.results.length > TRANSCRIPT_SIZE) this.results.shift();
    this.schedule(this.nextDelay()); // before the listeners, so one of them may stop() it
    for (const listener of [...this.probeListeners]) listener(result, this.state);
    if (this.state.status !== before) for (const listener of [...this.changeListeners]) listener(this.state.status, result);
  }
}

/**
 * The watcher's first verdict: `healthy` or `unhealthy` (at once if it has one already), or
 * `timeout` when `deadlineMs` milliseconds pass first or the watcher is stopped first.
 * Event-driven: it listens to the watcher and arms one timer for the deadline. That timer,
 * unlike the watcher's, is not unref'd: while someone awaits a verdict the process must not
 * exit under them (when the instance has died, nothing else may hold the event loop), and it
 * holds the process for at most `deadlineMs`; it is cleared as soon as the verdict comes.
 *
 * @example
 * if ((await waitForVerdict(watcher, 60_000)) !== 'healthy') return { failed: true, reason: watcher.transcript.at(-1)?.detail };
 */
export function waitForVerdict(watcher: HealthWatcher, deadlineMs: number): Promise<'healthy' | 'unhealthy' | 'timeout'> {
  if (watcher.status !== 'starting') return Promise.resolve(watcher.status);
  if (watcher.isStopped) return Promise.resolve('timeout');
  return new Promise((resolve) => {
    const done = (verdict: 'healthy' | 'unhealthy' | 'timeout'): void => {
      clearTimeout(timer);
      offChange();
      offStop();
      resolve(verdict);
    };
    const timer = setTimeout(() => done('timeout'), Math.max(0, deadlineMs));
    const offChange = watcher.onChange((status) => {
      if (status !== 'starting') done(status);
    });
    const offStop = watcher.onStop(() => done('timeout'));
  });
}

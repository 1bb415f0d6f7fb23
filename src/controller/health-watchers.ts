import type { ServiceHealth } from '../config/types.js';
import { HealthWatcher, type Prober } from '../health/health-gate.js';
import type { ProbeAddress } from '../health/probe.js';
import type { Clock } from '../util/clock.js';

/** A watcher's verdict change, as the loop hears of it. */
export type HealthChange = (id: string, status: 'starting' | 'healthy' | 'unhealthy', at: number) => void;

/**
 * The health watchers of one service's instances, by instance id: one per running instance,
 * made when it starts (or is adopted) and stopped when it goes. Every verdict change is
 * passed on (the loop wakes on it).
 */
export class HealthWatchers {
  private readonly watchers = new Map<string, HealthWatcher>();

  constructor(private readonly options: { clock: Clock; probe?: Prober | undefined; onChange: HealthChange }) {}

  /** Starts watching an instance unless it is watched already. */
  ensure(id: string, health: ServiceHealth, address: ProbeAddress, startedAt: number): void {
    if (this.watchers.has(id)) return;
    const watcher = new HealthWatcher({ health, address, startedAt, clock: this.options.clock, ...(this.options.probe ? { probe: this.options.probe } : {}) });
    watcher.onChange((status, result) => this.options.onChange(id, status, result.at + result.ms));
    this.watchers.set(id, watcher);
  }

  /** Whether an instance is watched. */
  has(id: string): boolean {
    return this.watchers.has(id);
  }

  /** Its verdict, when watched. */
  status(id: string): 'starting' | 'healthy' | 'unhealthy' | undefined {
    return this.watchers.get(id)?.status;
  }

  /** When it first passed its gate under its watcher. */
  healthyAt(id: string): number | undefined {
    return this.watchers.get(id)?.healthyAt;
  }

  /** When its watcher began (its gate's start). */
  since(id: string): number | undefined {
    return this.watchers.get(id)?.since;
  }

  /** Its last probes, one line each (for a failed deploy's transcript). */
  transcript(id: string): string[] {
    return (this.watchers.get(id)?.transcript ?? []).map((r) => `${new Date(r.at).toISOString()} ${r.ok ? 'ok' : 'FAIL'} ${r.detail}`);
  }

  /** Stops watching an instance. */
  stop(id: string): void {
    this.watchers.get(id)?.stop();
    this.watchers.delete(id);
  }

  /** Stops every watcher. */
  stopAll(): void {
    for (const watcher of this.watchers.values()) watcher.stop();
    this.watchers.clear();
  }
}

import type { ListenSpec } from './engine/engine.js';
import { emptyHistogram, type RouterControl, type RouterSnapshot, type RouterStats, type RouterTarget, type TargetState } from './router-control.js';

/**
 * A router that routes nothing: it remembers what the control loop told it, and lets a test
 * hold requests "in flight" on a target. For scenario tables on the fake provider.
 */
export class FakeRouter implements RouterControl {
  readonly kind = 'fake';
  readonly pid = undefined;
  private readonly targets = new Map<string, TargetState>();
  private weights: Record<string, number> | undefined;
  private listen = { host: '127.0.0.1', port: 1 };
  /** Every route and unroute, in order. */
  readonly journal: string[] = [];

  constructor(readonly service: string) {}

  async start(): Promise<{ host: string; port: number }> {
    return this.listen;
  }

  async route(target: RouterTarget): Promise<void> {
    const existing = this.targets.get(target.id);
    if (existing) existing.routed = true;
    else this.targets.set(target.id, { id: target.id, host: target.host, port: target.port, release: target.release, routed: true, inflight: 0 });
    this.journal.push(`route ${target.id}`);
  }

  async unroute(id: string): Promise<void> {
    const t = this.targets.get(id);
    if (t?.routed) {
      t.routed = false;
      this.journal.push(`unroute ${id}`);
    }
  }

  async drain(id: string): Promise<number> {
    await this.unroute(id);
    return this.targets.get(id)?.inflight ?? 0;
  }

  async forget(id: string): Promise<void> {
    this.targets.delete(id);
  }

  /** Remembers the new address (and says so in the journal). */
  async relisten(listen: ListenSpec): Promise<{ host: string; port: number }> {
    this.listen = { host: listen.host, port: listen.port || 1 };
    this.journal.push(`relisten ${listen.host}:${this.listen.port}${listen.tls ? ' tls' : ''}`);
    return this.listen;
  }

  async setWeights(weights: Record<string, number> | undefined): Promise<void> {
    this.weights = weights;
  }

  /** The ids routed now (synchronously, for scenario tests). */
  routed(): string[] {
    return [...this.targets.values()].filter((t) => t.routed).map((t) => t.id);
  }

  /** Sets how many requests are in flight on `id` (a test's slow clients). */
  setInflight(id: string, count: number): void {
    const t = this.targets.get(id);
    if (t) t.inflight = count;
  }

  async snapshot(): Promise<RouterSnapshot> {
    return { targets: [...this.targets.values()].map((t) => ({ ...t })), weights: this.weights };
  }

  async stats(): Promise<RouterStats> {
    const zero = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };
    return { requests: 0, failed: 0, retried: 0, targets: [...this.targets.values()].map((t) => ({ id: t.id, release: t.release, routed: t.routed, inflight: t.inflight, requests: 0, responses: { ...zero }, bytesIn: 0, bytesOut: 0, latency: emptyHistogram() })) };
  }

  async close(): Promise<void> {}

  async stop(): Promise<void> {
    this.targets.clear();
  }
}

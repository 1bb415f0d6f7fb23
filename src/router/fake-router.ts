import type { RouterControl, RouterStats, RouterTarget } from './router-control.js';

/**
 * A router that routes nothing: it remembers what the control loop told it, and lets a test
 * hold requests "in flight" on an instance. For scenario tables on the fake provider.
 */
export class FakeRouter implements RouterControl {
  readonly kind = 'fake';
  private readonly targets = new Map<string, { target: RouterTarget; routed: boolean; inflight: number }>();
  private readonly idle = new Set<(id: string) => void>();
  /** Every route and unroute, in order. */
  readonly journal: string[] = [];

  constructor(readonly service: string) {}

  async start(): Promise<{ host: string; port: number }> {
    return { host: '127.0.0.1', port: 1 };
  }

  route(target: RouterTarget): void {
    const existing = this.targets.get(target.id);
    if (existing) existing.routed = true;
    else this.targets.set(target.id, { target, routed: true, inflight: 0 });
    this.journal.push(`route ${target.id}`);
  }

  unroute(id: string): void {
    const t = this.targets.get(id);
    if (t?.routed) {
      t.routed = false;
      this.journal.push(`unroute ${id}`);
    }
  }

  forget(id: string): void {
    this.targets.delete(id);
  }

  routed(): string[] {
    return [...this.targets.values()].filter((t) => t.routed).map((t) => t.target.id);
  }

  inflight(id: string): number {
    return this.targets.get(id)?.inflight ?? 0;
  }

  /** Sets how many requests are in flight on `id` (a test's slow clients); reaching 0 tells the idle listeners. */
  setInflight(id: string, count: number): void {
    const t = this.targets.get(id);
    if (!t) return;
    t.inflight = count;
    if (count === 0 && !t.routed) for (const listener of [...this.idle]) listener(id);
  }

  onIdle(listener: (id: string) => void): () => void {
    this.idle.add(listener);
    return () => this.idle.delete(listener);
  }

  stats(): RouterStats {
    return { requests: 0, failed: 0, retried: 0, targets: [...this.targets.values()].map((t) => ({ id: t.target.id, routed: t.routed, inflight: t.inflight, requests: 0 })) };
  }

  async close(): Promise<void> {
    this.targets.clear();
  }
}

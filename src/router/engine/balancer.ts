import { targetWeights } from '../../core/weights.js';
import { emptyHistogram, type LatencyHistogram, type RouterTarget, type StatusClasses, type TargetState, type TargetStats } from '../router-control.js';

/** One target as the engine keeps it: where it is, whether it is routed, and its counts. */
export interface Upstream {
  target: RouterTarget;
  routed: boolean;
  inflight: number;
  weight: number;
  /** Smooth weighted round-robin's running score. */
  current: number;
  /** A connection to it failed: it gets no new request before this time, unless no other target is left. */
  downUntil: number;
  requests: number;
  responses: StatusClasses;
  bytesIn: number;
  bytesOut: number;
  latency: LatencyHistogram;
}

/**
 * The targets of one router and which one gets the next request: smooth weighted round-robin
 * (nginx's), so that shares follow the weights exactly over any run of requests, and a
 * target marked down is passed over while another is up.
 */
export class Balancer {
  readonly upstreams = new Map<string, Upstream>();
  private weights: Record<string, number> | undefined;

  /** Adds `target`, or routes it again; returns the upstream and whether it is new. */
  route(target: RouterTarget): { upstream: Upstream; added: boolean } {
    const existing = this.upstreams.get(target.id);
    if (existing) {
      existing.routed = true;
      if (target.release !== undefined) existing.target.release = target.release;
      this.reweigh();
      return { upstream: existing, added: false };
    }
    const upstream: Upstream = { target: { ...target }, routed: true, inflight: 0, weight: 0, current: 0, downUntil: 0, requests: 0, responses: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 }, bytesIn: 0, bytesOut: 0, latency: emptyHistogram() };
    this.upstreams.set(target.id, upstream);
    this.reweigh();
    return { upstream, added: true };
  }

  /** Sends no new request to `id`. */
  unroute(id: string): Upstream | undefined {
    const upstream = this.upstreams.get(id);
    if (!upstream) return undefined;
    upstream.routed = false;
    this.reweigh();
    return upstream;
  }

  /** Removes `id`. */
  forget(id: string): Upstream | undefined {
    const upstream = this.upstreams.get(id);
    if (!upstream) return undefined;
    this.upstreams.delete(id);
    this.reweigh();
    return upstream;
  }

  /** Sets the share by release. */
  setWeights(weights: Record<string, number> | undefined): void {
    this.weights = weights ? { ...weights } : undefined;
    this.reweigh();
  }

  /** The next target for a request, passing over `exclude` and (while another is up) ones marked down. */
  pick(exclude: ReadonlySet<string> | undefined, now: number): Upstream | undefined {
    let best: Upstream | undefined;
    let total = 0;
    let up = false;
    for (const u of this.upstreams.values()) if (u.weight > 0 && u.downUntil <= now && !exclude?.has(u.target.id)) up = true;
    for (const u of this.upstreams.values()) {
      if (u.weight === 0 || exclude?.has(u.target.id) || (up && u.downUntil > now)) continue;
      u.current += u.weight;
      total += u.weight;
      if (!best || u.current > best.current) best = u;
    }
    if (best) best.current -= total;
    return best;
  }

  /** What the router has now. */
  snapshot(): { targets: TargetState[]; weights: Record<string, number> | undefined } {
    const targets = [...this.upstreams.values()].map((u) => ({ id: u.target.id, host: u.target.host, port: u.target.port, release: u.target.release, routed: u.routed, inflight: u.inflight }));
    return { targets, weights: this.weights ? { ...this.weights } : undefined };
  }

  /** Each target's counts. */
  stats(): TargetStats[] {
    return [...this.upstreams.values()].map((u) => ({
      id: u.target.id,
      release: u.target.release,
      routed: u.routed,
      inflight: u.inflight,
      requests: u.requests,
      responses: { ...u.responses },
      bytesIn: u.bytesIn,
      bytesOut: u.bytesOut,
      latency: { counts: [...u.latency.counts] },
    }));
  }

  private reweigh(): void {
    const weights = targetWeights(
      [...this.upstreams.values()].map((u) => ({ id: u.target.id, release: u.target.release, routed: u.routed })),
      this.weights,
    );
    // New weights start a new round: scores left from the old ones would skew the first picks.
    for (const u of this.upstreams.values()) {
      u.weight = weights.get(u.target.id) ?? 0;
      u.current = 0;
    }
  }
}

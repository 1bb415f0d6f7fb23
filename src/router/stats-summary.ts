import { mergeHistograms, quantileOf, type RouterStats, type StatusClasses, type TargetStats } from './router-control.js';

/** Counts of a group of targets (a release, or the whole service), as `imago status --json` shows them. */
export interface TrafficSummary {
  requests: number;
  responses: StatusClasses;
  bytesIn: number;
  bytesOut: number;
  /** Latency quantiles (ms; bucket upper bounds, about 10% wide); null with no answer yet. */
  latencyMs: { p50: number | null; p95: number | null; p99: number | null };
}

/** The sums and latency quantiles of `targets`. */
export function summarise(targets: TargetStats[]): TrafficSummary {
  const responses: StatusClasses = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };
  let requests = 0;
  let bytesIn = 0;
  let bytesOut = 0;
  for (const t of targets) {
    requests += t.requests;
    bytesIn += t.bytesIn;
    bytesOut += t.bytesOut;
    for (const k of Object.keys(responses) as Array<keyof StatusClasses>) responses[k] += t.responses[k];
  }
  const latency = mergeHistograms(targets.map((t) => t.latency));
  const q = (p: number) => quantileOf(latency, p) ?? null;
  return { requests, responses, bytesIn, bytesOut, latencyMs: { p50: q(0.5), p95: q(0.95), p99: q(0.99) } };
}

/** A router's stats by release and by instance, with the router's own counts of failures and retries. */
export function summariseStats(stats: RouterStats): { requests: number; failed: number; retried: number; releases: Record<string, TrafficSummary>; instances: Record<string, TrafficSummary> } {
  const byRelease = new Map<string, TargetStats[]>();
  for (const t of stats.targets) {
    const key = t.release === undefined ? 'none' : String(t.release);
    byRelease.set(key, [...(byRelease.get(key) ?? []), t]);
  }
  return {
    requests: stats.requests,
    failed: stats.failed,
    retried: stats.retried,
    releases: Object.fromEntries([...byRelease].map(([release, targets]) => [release, summarise(targets)])),
    instances: Object.fromEntries(stats.targets.map((t) => [t.id, summarise([t])])),
  };
}

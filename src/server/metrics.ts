import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { TrafficSummary } from '../router/stats-summary.js';
import type { StateCounts } from '../state/counts.js';
import type { ForwarderState } from '../logs/syslog-forwarder.js';

/** What one scrape of `/metrics` reports, gathered by the control plane. */
export interface MetricsInput {
  state: StateCounts;
  /** Log lines stored and dropped, by service. */
  logs: { stored: Array<{ service: string; lines: number }>; dropped: Array<{ service: string; lines: number }> };
  /** The syslog forwarder, when one is configured. */
  forwarder?: ForwarderState | undefined;
  /** CPU and memory of each running instance, as its provider reads them. */
  usage?: Array<{ service: string; instance: string; release: string; cpuSeconds: number; memoryBytes: number }>;
  /** Each service's router: its totals, and per release (by version) what its instances served. */
  routers: Array<{
    service: string;
    kind: string;
    requests: number;
    failed: number;
    retried: number;
    releases: Record<string, TrafficSummary>;
  }>;
}

/** Deploy lengths' buckets (seconds): a fast rollback flip to a slow blue-green. */
const DEPLOY_BUCKETS = [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600];

/**
 * The Prometheus text exposition of one scrape, made with prom-client from `input` (a
 * registry of its own each time: the values come from the state database, the log store and
 * the routers, which keep them across restarts better than a process's memory would).
 */
export async function renderMetrics(input: MetricsInput): Promise<{ contentType: string; text: string }> {
  const registry = new Registry();
  const on = { registers: [registry] };
  const instances = new Gauge({ name: 'imago_instances', help: 'Instances imago counts on now, by service and state', labelNames: ['service', 'state'], ...on });
  for (const r of input.state.instances) instances.set({ service: r.service, state: r.state }, r.count);
  const deploys = new Counter({ name: 'imago_deploys_total', help: 'Finished deploys, by service and outcome (succeeded, failed, aborted)', labelNames: ['service', 'outcome'], ...on });
  for (const r of input.state.deploys) deploys.inc({ service: r.service, outcome: r.state }, r.count);
  const durations = new Histogram({ name: 'imago_deploy_duration_seconds', help: 'How long finished deploys took, by service and outcome', labelNames: ['service', 'outcome'], buckets: DEPLOY_BUCKETS, ...on });
  for (const r of input.state.deployDurations) durations.observe({ service: r.service, outcome: r.state }, Math.max(0, r.seconds));
  const rollbacks = new Counter({ name: 'imago_rollbacks_total', help: 'Releases made by a rollback, by service', labelNames: ['service'], ...on });
  for (const r of input.state.rollbacks) rollbacks.inc({ service: r.service }, r.count);
  const replacements = new Counter({ name: 'imago_guard_replacements_total', help: "Instances the guard started in a failed one's place, by service and how that one ended", labelNames: ['service', 'reason'], ...on });
  for (const r of input.state.replacements) replacements.inc({ service: r.service, reason: r.reason }, r.count);
  const drift = new Counter({ name: 'imago_drift_findings_total', help: 'Changes made to instances from outside imago, by service', labelNames: ['service'], ...on });
  for (const r of input.state.drift) drift.inc({ service: r.service }, r.count);
  const stored = new Counter({ name: 'imago_log_lines_total', help: 'Lines of instance output stored in the log store, by service', labelNames: ['service'], ...on });
  for (const r of input.logs.stored) stored.inc({ service: r.service }, r.lines);
  const dropped = new Counter({ name: 'imago_log_dropped_lines_total', help: 'Lines of instance output not stored (a backlog past its bound), by service', labelNames: ['service'], ...on });
  for (const r of input.logs.dropped) dropped.inc({ service: r.service }, r.lines);
  const cpu = new Counter({ name: 'imago_instance_cpu_seconds_total', help: 'CPU time an instance used since it started (process: its cgroup; docker: the engine)', labelNames: ['service', 'instance', 'release'], ...on });
  const memory = new Gauge({ name: 'imago_instance_memory_bytes', help: 'Memory an instance uses now, page cache it could give back left out', labelNames: ['service', 'instance', 'release'], ...on });
  for (const u of input.usage ?? []) {
    const labels = { service: u.service, instance: u.instance, release: u.release };
    cpu.inc(labels, u.cpuSeconds);
    memory.set(labels, u.memoryBytes);
  }
  if (input.forwarder) {
    const f = input.forwarder;
    const target = { target: f.target };
    new Gauge({ name: 'imago_syslog_connected', help: 'Whether the syslog forwarder is connected (1) or not (0)', labelNames: ['target'], ...on }).set(target, f.connected ? 1 : 0);
    new Counter({ name: 'imago_syslog_forwarded_total', help: 'Log lines written to the syslog connection since the control plane started', labelNames: ['target'], ...on }).inc(target, f.sent);
    new Counter({ name: 'imago_syslog_resent_total', help: 'Log lines sent again after a broken syslog connection', labelNames: ['target'], ...on }).inc(target, f.resent);
    new Counter({ name: 'imago_syslog_dropped_total', help: 'Log lines retention removed before the forwarder sent them', labelNames: ['target'], ...on }).inc(target, f.dropped);
  }

  const requests = new Counter({ name: 'imago_router_requests_total', help: "Requests (TCP: connections) the service's router took since it started", labelNames: ['service', 'data_plane'], ...on });
  const failed = new Counter({ name: 'imago_router_failed_total', help: "Requests the service's router failed (no instance, an instance that failed or timed out)", labelNames: ['service'], ...on });
  const retried = new Counter({ name: 'imago_router_retried_total', help: "Requests the service's router sent again to another instance", labelNames: ['service'], ...on });
  const byRelease = new Counter({
    name: 'imago_router_release_responses_total',
    help: "Responses by release and status class, from the router's counts of the release's current instances (a counter that resets when instances are replaced)",
    labelNames: ['service', 'release', 'class'],
    ...on,
  });
  const latency = new Gauge({ name: 'imago_router_release_latency_seconds', help: "Response time quantiles by release, from the router's histograms of the release's current instances", labelNames: ['service', 'release', 'quantile'], ...on });
  for (const r of input.routers) {
    requests.inc({ service: r.service, data_plane: r.kind }, r.requests);
    failed.inc({ service: r.service }, r.failed);
    retried.inc({ service: r.service }, r.retried);
    for (const [release, t] of Object.entries(r.releases)) {
      for (const [cls, n] of Object.entries(t.responses)) byRelease.inc({ service: r.service, release, class: cls }, n);
      for (const [q, ms] of [['0.5', t.latencyMs.p50], ['0.95', t.latencyMs.p95], ['0.99', t.latencyMs.p99]] as const) if (ms !== null) latency.set({ service: r.service, release, quantile: q }, ms / 1000);
    }
  }
  return { contentType: registry.contentType, text: await registry.metrics() };
}

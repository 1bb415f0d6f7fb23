import { RouterError } from '../errors.js';
import type { ListenSpec } from './engine/engine.js';

/**
 * The one interface between the control plane and a data plane: what the control loop asks
 * of a service's router. Every call is asynchronous (a router is its own process): the
 * control plane tells it what to route and reads back what it routes, and a router keeps
 * routing to the last set it was given while no control plane talks to it.
 *
 * Implementations: HAProxy through its runtime API (router/haproxy/), the built-in Node
 * router as its own process (router/builtin/), the same engine in-process (router/in-process.ts)
 * and a fake for scenario tests. One shared suite (test/router/router-suite.ts) runs on every
 * real one.
 */

/** An instance the router can send requests to. */
export interface RouterTarget {
  id: string;
  host: string;
  port: number;
  /** The release it belongs to: weights are set per release. */
  release?: number | undefined;
}

/** One target as the router has it now. */
export interface TargetState {
  id: string;
  host: string;
  port: number;
  release: number | undefined;
  /** New requests (or connections) go to it. */
  routed: boolean;
  /** Requests (in TCP mode, connections) it is answering now. */
  inflight: number;
}

/** What a router has now: its targets and the weights by release. */
export interface RouterSnapshot {
  targets: TargetState[];
  /** Share of new requests by release; undefined: every routed target weighs the same. */
  weights: Record<string, number> | undefined;
}

/** Counts of one target since the router first had it. */
export interface TargetStats {
  id: string;
  release: number | undefined;
  routed: boolean;
  inflight: number;
  /** Requests (TCP: connections) sent to it. */
  requests: number;
  /** Its answers by status class (TCP: all zero). */
  responses: StatusClasses;
  /** Bytes from clients to it, and from it to clients. */
  bytesIn: number;
  bytesOut: number;
  /** Its answers' latencies (time to the response's headers; TCP: connection lifetime), as a histogram. */
  latency: LatencyHistogram;
}

/** Answers by status class. */
export interface StatusClasses {
  '1xx': number;
  '2xx': number;
  '3xx': number;
  '4xx': number;
  '5xx': number;
}

/** Counts by latency bucket: `counts[i]` answers took at most `LATENCY_BOUNDS_MS[i]` (and more than the bound before). */
export interface LatencyHistogram {
  counts: number[];
}

/** What the router has seen since it started. */
export interface RouterStats {
  requests: number;
  /** Requests that failed at the router: answered 502/503/504 by it, or cut off mid-answer. */
  failed: number;
  /** Requests it sent to another instance after theirs failed before answering. */
  retried: number;
  targets: TargetStats[];
}

/** A service's router, as the control loop drives it. */
export interface RouterControl {
  readonly service: string;
  /** Which data plane this is, for `imago status` (`haproxy 2.6.12`, `built-in`, …). */
  readonly kind: string;
  /** Makes the router serve: adopts the one running, or starts it. Resolves with its address. */
  start(): Promise<{ host: string; port: number }>;
  /** Sends new requests to `target` too (adding it when new). */
  route(target: RouterTarget): Promise<void>;
  /** Sends no new request to `id`; the ones in flight go on (it drains). */
  unroute(id: string): Promise<void>;
  /**
   * Unroutes `id` and resolves once nothing is in flight to it, or `timeoutMs` passed;
   * resolves with what was still in flight then (0: drained).
   */
  drain(id: string, timeoutMs: number): Promise<number>;
  /** Removes `id` altogether (after its drain, or at once for a dead one). */
  forget(id: string): Promise<void>;
  /**
   * Serves `listen` from now on (a new address, new TLS files, TLS on or off; never another
   * protocol), without a refused connection at an address it keeps and with what is in flight
   * finished; its routes stay. Resolves with the address it serves. Bad TLS files or a new
   * address in use are a RouterError, and it serves on as it was.
   */
  relisten(listen: ListenSpec): Promise<{ host: string; port: number }>;
  /** Sets the share of new requests by release (`{ 1: 90, 2: 10 }`); undefined: every target the same. */
  setWeights(weights: Record<string, number> | undefined): Promise<void>;
  /** What it routes now. */
  snapshot(): Promise<RouterSnapshot>;
  /** Counts so far. */
  stats(): Promise<RouterStats>;
  /** The router's process id, when it runs as a process of its own. */
  readonly pid: number | undefined;
  /** Lets go of the router: one that is its own process keeps serving (a restarted control plane adopts it). */
  close(): Promise<void>;
  /** Stops the router itself (its process too): the service no longer answers. */
  stop(): Promise<void>;
}

/** The upper bounds of the latency buckets (ms): about 10% apart, from 0.1 ms to 100 s; the last is open. */
export const LATENCY_BOUNDS_MS: readonly number[] = (() => {
  const out: number[] = [];
  for (let bound = 0.1; bound < 100_000; bound *= 1.1) out.push(Math.round(bound * 1000) / 1000);
  out.push(Number.POSITIVE_INFINITY);
  return out;
})();

/** An empty latency histogram. */
export function emptyHistogram(): LatencyHistogram {
  return { counts: new Array<number>(LATENCY_BOUNDS_MS.length).fill(0) };
}

/** Adds one latency (ms) to `histogram`, `count` times (a sample standing for that many). */
export function observeLatency(histogram: LatencyHistogram, ms: number, count = 1): void {
  // Bounds grow by 10%: the index is a logarithm, then a step to be exact at the edges.
  let i = ms <= 0.1 ? 0 : Math.min(LATENCY_BOUNDS_MS.length - 1, Math.ceil(Math.log(ms / 0.1) / Math.log(1.1)));
  while (i > 0 && LATENCY_BOUNDS_MS[i - 1]! >= ms) i--;
  while (LATENCY_BOUNDS_MS[i]! < ms) i++;
  histogram.counts[i] = (histogram.counts[i] ?? 0) + count;
}

/** The sum of histograms. */
export function mergeHistograms(histograms: LatencyHistogram[]): LatencyHistogram {
  const out = emptyHistogram();
  for (const h of histograms) for (let i = 0; i < out.counts.length; i++) out.counts[i]! += h.counts[i] ?? 0;
  return out;
}

/** The `q` quantile (0..1) of a histogram, as its bucket's upper bound (ms); undefined when empty. */
export function quantileOf(histogram: LatencyHistogram, q: number): number | undefined {
  const total = histogram.counts.reduce((a, b) => a + b, 0);
  if (total === 0) return undefined;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let i = 0; i < histogram.counts.length; i++) {
    seen += histogram.counts[i]!;
    if (seen >= rank) return Number.isFinite(LATENCY_BOUNDS_MS[i]!) ? LATENCY_BOUNDS_MS[i]! : LATENCY_BOUNDS_MS[i - 1]!;
  }
  return undefined;
}

/**
 * Unroutes `id` on `router` and polls its in-flight count until 0 or `timeoutMs`: the drain
 * every implementation shares (a router reports in-flight counts; none pushes them).
 */
export async function drainBy(router: Pick<RouterControl, 'unroute' | 'snapshot'>, id: string, timeoutMs: number, pollMs = 50): Promise<number> {
  await router.unroute(id);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const target = (await router.snapshot()).targets.find((t) => t.id === id);
    const inflight = target?.inflight ?? 0;
    if (inflight === 0 || Date.now() >= deadline) return inflight;
    await new Promise((resolve) => setTimeout(resolve, Math.min(pollMs, Math.max(1, deadline - Date.now()))));
  }
}

/** The longest path a unix socket may have on Linux (108 bytes with its terminating zero). */
const MAX_SOCKET_PATH = 107;

/** A RouterError when a router's control socket path is too long for a unix socket. */
export function checkSocketPath(service: string, path: string): void {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    throw new RouterError(`the router of service '${service}' cannot have its control socket at ${path}: ${Buffer.byteLength(path)} bytes, and a unix socket path has at most ${MAX_SOCKET_PATH}; use a shorter --home`, { badInput: true });
  }
}

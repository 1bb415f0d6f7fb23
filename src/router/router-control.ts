/**
 * The one interface between the control plane and a data plane: what the control loop asks
 * of a router. The in-process ServiceRouter implements it today; the data plane of its own
 * (HAProxy, or a Node router process) implements the same, and a fake does for scenario tests.
 */

/** An instance the router can send requests to. */
export interface RouterTarget {
  id: string;
  host: string;
  port: number;
}

/** What the router has seen, overall and per instance. */
export interface RouterStats {
  requests: number;
  /** Requests that failed at the router: answered 502/503 by it, or cut off mid-answer. */
  failed: number;
  /** Requests it sent to another instance after theirs failed before answering. */
  retried: number;
  targets: Array<{ id: string; routed: boolean; inflight: number; requests: number }>;
}

/** A service's router, as the control loop drives it. */
export interface RouterControl {
  readonly service: string;
  /** Starts serving; resolves with the bound address (port 0: one is chosen). */
  start(): Promise<{ host: string; port: number }>;
  /** Sends new requests to `target` too. */
  route(target: RouterTarget): void;
  /** Sends no new request to `id`; the ones in flight go on (it drains). */
  unroute(id: string): void;
  /** Forgets `id` altogether (after its drain, or at once for a dead one); requests still in flight may finish. */
  forget(id: string): void;
  /** The ids new requests go to. */
  routed(): string[];
  /** Requests in flight to `id`. */
  inflight(id: string): number;
  /** Calls `listener` when an unrouted instance has nothing left in flight; returns the unsubscribe. */
  onIdle(listener: (id: string) => void): () => void;
  /** Counts so far. */
  stats(): RouterStats;
  /** Which data plane this is, for `imago status`. */
  readonly kind: string;
  /** Stops serving. */
  close(): Promise<void>;
}

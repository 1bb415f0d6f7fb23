/**
 * The words reconcile speaks: one service's desired state, its observed instances and
 * failures, and the actions that bring the second to the first. Plain data; see README.md.
 */
import type { BackoffPolicy } from './backoff.js';
import type { PhoenixPolicy } from './phoenix.js';
import type { RolloutLimits } from './rollout.js';

/** One instance as the provider, the health checks, the router and the state database see it. */
export interface ObservedInstance {
  id: string;
  /** The release it was started from; undefined for one that is no instance of this service's releases (unmanaged). */
  release: number | undefined;
  /** `lost`: the state database counts on it, the provider no longer has it. */
  state: 'running' | 'exited' | 'lost';
  /** Its health checks' verdict: `starting` until the first one. */
  health: 'starting' | 'healthy' | 'unhealthy';
  /** When it first passed its health gate (ms since the epoch). */
  healthyAt?: number | undefined;
  /** When imago began checking its health (its start, or its adoption by this control plane). */
  gateSince?: number | undefined;
  /** The router sends it traffic. */
  routed: boolean;
  /** When imago stopped routing to it (set while it drains). */
  unroutedAt?: number | undefined;
  /** Requests it is still answering. */
  inflight?: number | undefined;
  /** When it started (ms since the epoch). */
  startedAt: number;
  /** What was done to it from outside imago, one line each (empty: as started). */
  drift?: string[] | undefined;
  /** The failures in a row of its lineage that led to its start (0 or absent: started fresh). */
  attempt?: number | undefined;
  /** Why it exited or was lost, for people: `exit code 3`, `killed by SIGKILL` … */
  exit?: string | undefined;
  /** Its start failed with this error (the provider could not create it). */
  startError?: string | undefined;
}

/** A failed instance of the desired release whose place waits for a replacement. */
export interface PendingFailure {
  /** The failed instance. */
  id: string;
  release: number;
  /** When it failed (ms since the epoch). */
  at: number;
  /** The failures in a row of its lineage, this one included. */
  streak: number;
  /** Why, for people. */
  reason: string;
}

/** What the guard does beside rollouts. */
export interface GuardPolicy {
  phoenix: PhoenixPolicy;
  /** A drifted instance is replaced (`replace`) or only reported (`report`). */
  drift: 'replace' | 'report';
  backoff: BackoffPolicy;
  /** How long an instance the guard started may take to pass its health gate (ms). */
  gateTimeout: number;
}

/** What one service should be. */
export interface DesiredService {
  /** The release that should serve; undefined: none (every instance goes). */
  release: number | undefined;
  strategy: string;
  /** The rollout limits at the desired replica count. */
  limits: RolloutLimits;
  /** A deploy of `release` in progress: its failures fail the deploy instead of being replaced. */
  rollout: { startedAt: number } | undefined;
  /** How long a deploy's new instances may take to pass their health gate (ms). */
  deployTimeout: number;
  drainTimeout: number;
  guard: GuardPolicy;
  /**
   * The previous release, whose instances stay up unrouted until `until` (`keepPrevious`;
   * Infinity while the deploy that replaces them runs); undefined: none is kept.
   */
  keep?: { release: number; until: number } | undefined;
}

/** The observed state reconcile decides on. */
export interface Observed {
  instances: ObservedInstance[];
  /** Failed instances whose places wait for a replacement (from earlier rounds). */
  failures: PendingFailure[];
  /** The desired release's most recent failure, replaced or not (for the degraded verdict). */
  lastFailure?: PendingFailure | undefined;
}

/** The named groups observed instances fall into; each instance is in exactly one (see README.md). */
export interface Buckets {
  healthy: string[];
  starting: string[];
  ready: string[];
  unhealthy: string[];
  failed: string[];
  crashed: string[];
  lost: string[];
  drifted: string[];
  tooOld: string[];
  old: string[];
  draining: string[];
  unmanaged: string[];
}

/** How an instance that is stopped ends, as recorded. */
export type StopOutcome = 'stopped' | 'failed' | 'crashed' | 'lost';

/** One instance to stop and destroy (or, lost, only to record). */
export interface StopOrder {
  id: string;
  outcome: StopOutcome;
  /** Why, for the record: `drained`, `too old`, `exit code 3` … */
  reason: string;
  /** For a failure of the desired release: its run of failures, and whether its place waits for a replacement. */
  failure?: { streak: number; awaiting: boolean };
}

/** One instance to start. */
export interface StartOrder {
  /** Its lineage's failures in a row so far (0: fresh). */
  attempt: number;
  /** The failed instance whose place it takes. */
  replaces?: string;
}

/** What the controller should do now. Every list names instance ids. */
export interface Actions {
  start: StartOrder[];
  route: string[];
  unroute: string[];
  stop: StopOrder[];
  /** Pending failures whose places are no longer needed (a scale-down, another release). */
  drop: string[];
  /** The deploy in progress cannot succeed: why, and the new instances to blame. */
  deployFailed: { reason: string; instances: string[] } | undefined;
  /** Instances leaving service on purpose, and why (`old release`, `drifted`, `too old`, `surplus`, `unhealthy`). */
  retiring: Record<string, string>;
  /** Drifted instances the policy only reports. */
  reported: string[];
  /** The release keeps failing: why, and when the next replacement may start. */
  degraded: { reason: string; nextStartAt: number | undefined } | undefined;
  /** The fleet is what the desired state asks for, with nothing in flight. */
  converged: boolean;
  /** The latest time (ms since the epoch) reconcile should run again, when a time-based decision waits. */
  wakeAt: number | undefined;
  buckets: Buckets;
}

/**
 * The vocabulary of a rollout: replacing `old` instances (of the release now serving) with
 * `replicas` new ones. Pure data; strategies decide, the planner simulates, the controller
 * carries the steps out.
 */

/** Where a rollout stands. Counts of instances. */
export interface RolloutState {
  /** Old instances still receiving traffic. */
  old: number;
  /** New instances started and not yet healthy. */
  starting: number;
  /** New instances healthy and not yet receiving traffic. */
  ready: number;
  /** New instances receiving traffic. */
  serving: number;
  /** Old instances no longer routed, finishing in-flight requests or stopping. */
  draining: number;
}

/** What the rollout's size limits are, resolved to counts. */
export interface RolloutLimits {
  replicas: number;
  /** Instances allowed above `replicas` while rolling. */
  maxSurge: number;
  /** Instances allowed below `replicas` (below the old count, when smaller) while rolling. */
  maxUnavailable: number;
}

/** One step of a rollout. */
export type RolloutStep =
  /** Start `count` new instances (nothing is routed to them yet). */
  | { kind: 'start'; count: number }
  /** Wait until `count` started instances pass their health gate. */
  | { kind: 'wait-healthy'; count: number }
  /** Route traffic to `route` healthy new instances and stop routing to `unroute` old ones, at once. */
  | { kind: 'shift'; route: number; unroute: number }
  /** Let `count` unrouted old instances finish their in-flight requests. */
  | { kind: 'drain'; count: number }
  /** Stop `count` drained old instances (SIGTERM, then SIGKILL after the grace period). */
  | { kind: 'stop'; count: number };

/** A step with the fleet it leaves behind. */
export interface PlannedStep {
  step: RolloutStep;
  /** Instances receiving traffic after the step (old and new). */
  serving: number;
  /** Instances running after the step (serving, starting, healthy, draining). */
  running: number;
  after: RolloutState;
}

/** A whole rollout, as `imago plan` shows it. */
export interface RolloutPlan {
  strategy: string;
  limits: RolloutLimits;
  from: RolloutState;
  steps: PlannedStep[];
  /** Lowest and highest `serving` and highest `running` over the plan. */
  minServing: number;
  maxRunning: number;
}

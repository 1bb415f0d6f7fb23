import type { RolloutLimits, RolloutState, RolloutStep } from './rollout.js';
import { strategyFor } from './strategies/index.js';

/** One instance as a provider and the router report it. */
export interface ObservedInstance {
  id: string;
  /** The release it was started from (its label); undefined for an instance imago did not start. */
  release: number | undefined;
  state: 'running' | 'exited';
  /** The health gate: `starting` until it passes or fails. */
  health: 'starting' | 'healthy' | 'unhealthy';
  /** The router sends it traffic. */
  routed: boolean;
  /** When the router stopped sending it traffic (ms since the epoch); set while it drains. */
  unroutedAt?: number;
  /** Requests it is still answering, as the router counts them. */
  inflight?: number;
  /** When it started (ms since the epoch). */
  startedAt: number;
}

/** What a service should be. */
export interface DesiredService {
  /** The release that should serve. */
  release: number;
  strategy: string;
  limits: RolloutLimits;
  /** When the deploy of `release` began; undefined once it finished. */
  deployStartedAt: number | undefined;
  deployTimeout: number;
  drainTimeout: number;
}

/** The named groups observed instances fall into. */
export interface Buckets {
  /** Of the desired release, routed. */
  serving: string[];
  /** Of the desired release, healthy, not routed yet. */
  ready: string[];
  /** Of the desired release, health gate not passed yet. */
  starting: string[];
  /** Of the desired release, failed the health gate or later checks. */
  unhealthy: string[];
  /** Of an older release, routed. */
  old: string[];
  /** Of an older release, unrouted, finishing in-flight requests. */
  draining: string[];
  /** Exited (crashed or stopped from outside). */
  crashed: string[];
  /** Running without imago's labels: reported, never touched. */
  unmanaged: string[];
}

/** What the controller should do now. Every list names instance ids. */
export interface Actions {
  /** New instances of the desired release to start. */
  start: number;
  route: string[];
  unroute: string[];
  /** Stop and destroy (drained, crashed, or failed instances). */
  stop: string[];
  /** The deploy cannot succeed: the reason and the new instances to blame. */
  failed: { reason: string; instances: string[] } | undefined;
  /** The fleet is what the desired state asks for, nothing in flight. */
  converged: boolean;
  buckets: Buckets;
}

/**
 * Decides the next actions for one service: `(desired, observed, now) → actions`. Pure, and
 * never throws for a state of the world (crashed, unhealthy, unmanaged are buckets). It sorts
 * instances into buckets, then asks the service's strategy for the next steps from the
 * rollout state those buckets make, and names the instances each step acts on.
 */
export function reconcile(desired: DesiredService, observed: ObservedInstance[], now: number): Actions {
  const buckets = classify(desired, observed);
  const byId = new Map(observed.map((i) => [i.id, i]));
  const oldestFirst = (ids: string[]) => [...ids].sort((a, b) => byId.get(a)!.startedAt - byId.get(b)!.startedAt || (a < b ? -1 : 1));
  const actions: Actions = { start: 0, route: [], unroute: [], stop: [...buckets.crashed], failed: undefined, converged: false, buckets };

  // A deploy fails when a new instance fails its gate or exits, or the gate outlasts the deadline.
  const deploying = desired.deployStartedAt !== undefined;
  const overdue = deploying && now - desired.deployStartedAt! > desired.deployTimeout && buckets.starting.length > 0;
  const crashedNew = buckets.crashed.filter((id) => byId.get(id)!.release === desired.release);
  if (deploying && (buckets.unhealthy.length > 0 || crashedNew.length > 0 || overdue)) {
    const blamed = [...buckets.unhealthy, ...crashedNew, ...buckets.starting];
    const reason = buckets.unhealthy.length > 0
      ? `${buckets.unhealthy.length} new instance(s) failed the health check`
      : crashedNew.length > 0
        ? `${crashedNew.length} new instance(s) exited`
        : `new instances were not healthy within ${Math.round(desired.deployTimeout / 1000)}s`;
    actions.failed = { reason, instances: blamed };
    actions.stop.push(...blamed.filter((id) => !crashedNew.includes(id)), ...buckets.ready);
    return actions;
  }
  // Out of a deploy, an unhealthy instance is replaced: unroute it, stop it, start another.
  const unhealthyServing = buckets.unhealthy.filter((id) => byId.get(id)!.routed);
  actions.unroute.push(...unhealthyServing);
  actions.stop.push(...buckets.unhealthy.filter((id) => !byId.get(id)!.routed));

  // Drained instances (nothing in flight, or the drain timeout passed) are stopped.
  for (const id of buckets.draining) {
    const instance = byId.get(id)!;
    const since = instance.unroutedAt ?? now;
    if ((instance.inflight ?? 0) === 0 || now - since >= desired.drainTimeout) actions.stop.push(id);
  }

  const state: RolloutState = {
    old: buckets.old.length,
    starting: buckets.starting.length,
    ready: buckets.ready.length,
    serving: buckets.serving.length - unhealthyServing.length,
    draining: buckets.draining.length,
  };
  const steps = strategyFor(desired.strategy)(state, desired.limits);
  applyRound(steps, actions, { ready: oldestFirst(buckets.ready), old: oldestFirst(buckets.old) });
  actions.converged = steps.length === 0 && actions.stop.length === 0 && actions.unroute.length === 0 && !deployingWork(buckets);
  return actions;
}

/** Sorts instances into buckets. */
export function classify(desired: DesiredService, observed: ObservedInstance[]): Buckets {
  const buckets: Buckets = { serving: [], ready: [], starting: [], unhealthy: [], old: [], draining: [], crashed: [], unmanaged: [] };
  for (const instance of observed) {
    if (instance.release === undefined) buckets.unmanaged.push(instance.id);
    else if (instance.state === 'exited') buckets.crashed.push(instance.id);
    else if (instance.release === desired.release) {
      if (instance.health === 'unhealthy') buckets.unhealthy.push(instance.id);
      else if (instance.routed) buckets.serving.push(instance.id);
      else if (instance.health === 'healthy') buckets.ready.push(instance.id);
      else buckets.starting.push(instance.id);
    } else if (instance.routed) buckets.old.push(instance.id);
    else buckets.draining.push(instance.id);
  }
  return buckets;
}

/** Carries out the round's steps up to the first one that must wait (a health gate, a drain). */
function applyRound(steps: RolloutStep[], actions: Actions, pick: { ready: string[]; old: string[] }): void {
  for (const step of steps) {
    switch (step.kind) {
      case 'start':
        actions.start += step.count;
        break;
      case 'shift':
        actions.route.push(...pick.ready.splice(0, step.route));
        actions.unroute.push(...pick.old.splice(0, step.unroute));
        break;
      case 'wait-healthy':
      case 'drain':
      case 'stop':
        return; // the next call sees the result and goes on
    }
  }
}

function deployingWork(buckets: Buckets): boolean {
  return buckets.starting.length + buckets.ready.length + buckets.old.length + buckets.draining.length + buckets.crashed.length > 0;
}

import { backoffDelay, failureStreak } from './backoff.js';
import type { Actions, Buckets, DesiredService, Observed, ObservedInstance, PendingFailure, StopOrder } from './fleet.js';
import { phoenixDueAt } from './phoenix.js';
import type { RolloutState } from './rollout.js';
import { strategyFor } from './strategies/index.js';

export type { Actions, Buckets, DesiredService, Observed, ObservedInstance, PendingFailure } from './fleet.js';

/**
 * Decides the next actions for one service: `(desired, observed, { now }) → actions`. Pure,
 * and never throws for a state of the world: crashed, lost, unhealthy, drifted, too old and
 * unmanaged instances are buckets (README.md), each with its decision.
 *
 * - A deploy in progress fails on the first failure of a new instance, or when its gate
 *   outlasts the deploy's deadline; the new instances stop and nothing else is touched.
 * - Otherwise broken instances leave at once and their places are filled again, the first
 *   failure of a lineage at once, later ones after an exponential back-off.
 * - Instances leaving on purpose (an older release, drifted, too old) are replaced
 *   surge-first by the service's strategy, within its surge and unavailability budgets.
 *
 * @example reconcile(desired, { instances, failures: [] }, { now: Date.now() }).start.length
 */
export function reconcile(desired: DesiredService, observed: Observed, { now }: { now: number }): Actions {
  const buckets = classify(desired, observed.instances, now);
  const byId = new Map(observed.instances.map((i) => [i.id, i]));
  const get = (id: string): ObservedInstance => byId.get(id)!;
  const oldestFirst = (ids: string[]) => [...ids].sort((a, b) => get(a).startedAt - get(b).startedAt || (a < b ? -1 : 1));
  const replicas = desired.release === undefined ? 0 : desired.limits.replicas;
  const wake = new Earliest(now);
  const actions: Actions = {
    start: [],
    route: [],
    unroute: [],
    stop: [],
    drop: [],
    deployFailed: undefined,
    retiring: {},
    reported: [],
    degraded: undefined,
    converged: false,
    wakeAt: undefined,
    buckets,
  };
  const ofDesired = (id: string) => desired.release !== undefined && get(id).release === desired.release;
  if (desired.guard.drift === 'report') {
    actions.reported = observed.instances.filter((i) => i.release !== undefined && i.state === 'running' && (i.drift?.length ?? 0) > 0).map((i) => i.id);
  }

  // A deploy in progress: a failure of a new instance fails it (nothing is replaced).
  if (desired.rollout && desired.release !== undefined) {
    const broken = [...buckets.crashed, ...buckets.lost, ...buckets.failed, ...buckets.unhealthy].filter(ofDesired);
    const deadline = desired.rollout.startedAt + desired.deployTimeout;
    const overdue = now > deadline && buckets.starting.length > 0;
    if (broken.length > 0 || overdue) {
      actions.deployFailed = { reason: deployFailure(broken.map(get), buckets, desired, overdue), instances: [...broken, ...buckets.starting] };
      for (const id of [...buckets.crashed, ...buckets.lost]) actions.stop.push(gone(get(id), buckets.lost.includes(id)));
      for (const id of [...buckets.failed, ...buckets.unhealthy].filter(ofDesired)) actions.stop.push({ id, outcome: 'failed', reason: failedReason(get(id), buckets, desired, now) });
      for (const id of [...buckets.starting, ...buckets.ready]) actions.stop.push({ id, outcome: 'failed', reason: 'its deploy failed' });
      return actions;
    }
    if (buckets.starting.length > 0) wake.at(deadline);
  }

  // Broken instances leave at once; the places of the desired release's wait for replacements.
  const fresh: PendingFailure[] = [];
  const fail = (order: StopOrder) => {
    const instance = get(order.id);
    if (ofDesired(order.id) && !desired.rollout) {
      const streak = failureStreak(instance, now, desired.guard.backoff);
      order.failure = { streak, awaiting: true };
      fresh.push({ id: order.id, release: desired.release!, at: now, streak, reason: order.reason });
    }
    actions.stop.push(order);
  };
  for (const id of [...buckets.crashed, ...buckets.lost]) fail(gone(get(id), buckets.lost.includes(id)));
  for (const id of buckets.failed) fail({ id, outcome: 'failed', reason: failedReason(get(id), buckets, desired, now) });

  // Unhealthy (was healthy, now failing): out of the router at once, unless nothing else
  // would serve; then it serves on until a replacement is healthy (a request it might answer
  // beats a certain 503).
  const routed = (id: string) => get(id).routed;
  const otherServing = [...buckets.healthy, ...buckets.old, ...buckets.drifted, ...buckets.tooOld].filter(routed).length;
  const panic = otherServing === 0 ? buckets.unhealthy.filter(routed) : [];
  for (const id of buckets.unhealthy) if (!panic.includes(id)) fail({ id, outcome: 'failed', reason: `failed its health checks after being healthy` });

  // Instances leaving on purpose: routed ones leave as their replacements serve (the
  // strategy's pace), the rest at once.
  const leaving: Array<[string[], string]> = [
    [panic, 'unhealthy'],
    [buckets.drifted, 'drifted'],
    [buckets.old, 'old release'],
    [oldestFirst(buckets.tooOld), 'too old'],
  ];
  const retirees: string[] = [];
  for (const [ids, reason] of leaving) {
    for (const id of ids) {
      actions.retiring[id] = reason;
      if (routed(id)) retirees.push(id);
      else actions.stop.push({ id, outcome: 'stopped', reason });
    }
  }

  // Draining instances stop once nothing is in flight, or the drain timeout passed. (The
  // one drain decision: stopping never waits again.) The previous release's, under
  // `keepPrevious`, stay up once drained, unrouted, until its window ends: a rollback inside
  // it routes them again instead of starting new ones.
  let draining = 0;
  const keep = desired.keep !== undefined && now < desired.keep.until ? desired.keep : undefined;
  for (const id of buckets.draining) {
    const instance = get(id);
    const since = instance.unroutedAt ?? now;
    if (keep && instance.release === keep.release && instance.state === 'running' && instance.health !== 'unhealthy' && (instance.drift?.length ?? 0) === 0) {
      actions.retiring[id] = 'kept for a fast rollback';
      if (Number.isFinite(keep.until)) wake.at(keep.until);
      continue;
    }
    if ((instance.inflight ?? 0) === 0) actions.stop.push({ id, outcome: 'stopped', reason: 'drained' });
    else if (now - since >= desired.drainTimeout) actions.stop.push({ id, outcome: 'stopped', reason: `drain timeout: ${instance.inflight} request(s) still in flight after ${Math.round(desired.drainTimeout / 1000)}s` });
    else {
      draining++;
      wake.at(since + desired.drainTimeout);
    }
  }

  // More instances of the desired release than replicas (a scale-down): the newest leave,
  // those not serving yet first. No other instance is touched.
  const starting = oldestFirst(buckets.starting);
  const ready = oldestFirst(buckets.ready);
  const healthy = oldestFirst(buckets.healthy);
  let surplus = starting.length + ready.length + healthy.length - replicas;
  for (const pool of [starting, ready, healthy]) {
    while (surplus > 0 && pool.length > 0) {
      const id = pool.pop()!;
      surplus--;
      actions.retiring[id] = 'surplus';
      if (routed(id)) actions.unroute.push(id);
      else actions.stop.push({ id, outcome: 'stopped', reason: 'surplus (scaled down)' });
    }
  }

  // The strategy paces the rest: routing the healthy new ones, retiring, starting.
  const freshCount = starting.length + ready.length + healthy.length;
  const state: RolloutState = { old: retirees.length, starting: starting.length, ready: ready.length, serving: healthy.length, draining };
  let startable = 0;
  for (const step of strategyFor(desired.strategy)(state, { ...desired.limits, replicas })) {
    if (step.kind === 'wait-healthy') break; // the steps after it depend on the gate
    if (step.kind === 'start') startable += step.count;
    if (step.kind === 'shift') {
      actions.route.push(...ready.splice(0, step.route));
      actions.unroute.push(...retirees.splice(0, step.unroute));
    }
  }

  // Back-off: a failed instance's place is filled when its lineage's wait is over.
  const want = Math.max(0, replicas - freshCount);
  for (const failure of observed.failures) if (failure.release !== desired.release) actions.drop.push(failure.id);
  const pending = [...observed.failures.filter((f) => f.release === desired.release), ...fresh]
    .map((failure) => ({ failure, due: failure.at + backoffDelay(failure.streak, desired.guard.backoff) }))
    .sort((a, b) => a.due - b.due || a.failure.at - b.failure.at);
  const kept = pending.slice(0, want);
  for (const { failure } of pending.slice(want)) {
    const order = actions.stop.find((o) => o.id === failure.id);
    if (order?.failure) order.failure.awaiting = false;
    else actions.drop.push(failure.id);
  }
  const waiting = kept.filter((p) => p.due > now);
  const due = kept.filter((p) => p.due <= now);
  for (const p of waiting) wake.at(p.due);
  // Out of a deploy, a failed instance's place is filled whatever the strategy's pace (blue-green
  // would wait for every starting instance first), within the surge: its slot is empty.
  if (!desired.rollout) startable = Math.max(startable, Math.min(due.length, desired.limits.replicas + desired.limits.maxSurge - retirees.length - freshCount));
  const starts = Math.min(startable, Math.max(0, want - waiting.length));
  for (let i = 0; i < starts; i++) {
    const p = due.shift();
    actions.start.push(p ? { attempt: p.failure.streak, replaces: p.failure.id } : { attempt: 0 });
  }

  // A release whose instances keep failing is degraded until the fleet is whole again.
  const looping = kept.filter((p) => p.failure.streak >= 2);
  const last = [...looping.map((p) => p.failure), ...(observed.lastFailure ? [observed.lastFailure] : [])]
    .filter((f) => f.release === desired.release && f.streak >= 2)
    .sort((a, b) => b.at - a.at)[0];
  if (last && (looping.length > 0 || healthy.length + actions.route.length < replicas)) {
    const nextStartAt = waiting.length > 0 ? waiting[0]!.due : undefined;
    actions.degraded = { reason: `crash loop: ${last.streak} failures in a row; the last: ${last.reason}`, nextStartAt };
  }

  // Time-based decisions still ahead: phoenix due times, guard gates.
  for (const id of [...healthy, ...ready, ...starting]) {
    const dueAt = phoenixDueAt(get(id), desired.guard.phoenix);
    if (dueAt !== undefined) wake.at(dueAt);
  }
  if (!desired.rollout) for (const id of starting) wake.at((get(id).gateSince ?? get(id).startedAt) + desired.guard.gateTimeout + 1);

  actions.converged =
    actions.start.length + actions.route.length + actions.unroute.length + actions.stop.length + actions.drop.length === 0 &&
    retirees.length + draining + starting.length + ready.length + kept.length === 0 &&
    healthy.length === replicas;
  actions.wakeAt = wake.value;
  return actions;
}

/**
 * Sorts instances into buckets; each lands in exactly one. For an instance of the desired
 * release that fits several, the first wins: unhealthy (or failed), drifted, too old.
 */
export function classify(desired: DesiredService, instances: ObservedInstance[], now: number): Buckets {
  const buckets: Buckets = { healthy: [], starting: [], ready: [], unhealthy: [], failed: [], crashed: [], lost: [], drifted: [], tooOld: [], old: [], draining: [], unmanaged: [] };
  for (const instance of instances) buckets[bucketOf(desired, instance, now)].push(instance.id);
  return buckets;
}

function bucketOf(desired: DesiredService, i: ObservedInstance, now: number): keyof Buckets {
  if (i.release === undefined) return 'unmanaged';
  if (i.state === 'lost') return 'lost';
  if (i.state === 'exited') return 'crashed';
  if (i.unroutedAt !== undefined) return 'draining';
  if (desired.release === undefined || i.release !== desired.release) return i.routed ? 'old' : 'draining';
  if (i.health === 'unhealthy') return i.healthyAt !== undefined ? 'unhealthy' : 'failed';
  if (gateTimedOut(desired, i, now)) return 'failed';
  if ((i.drift?.length ?? 0) > 0 && desired.guard.drift === 'replace') return 'drifted';
  // Phoenix recycles instances that serve; one still in its gate is not old yet.
  const dueAt = phoenixDueAt(i, desired.guard.phoenix);
  if (i.routed && dueAt !== undefined && now >= dueAt) return 'tooOld';
  if (i.routed) return 'healthy';
  return i.health === 'healthy' ? 'ready' : 'starting';
}

/** Out of a deploy, an instance the guard started that is still in its gate after `gateTimeout`. */
function gateTimedOut(desired: DesiredService, i: ObservedInstance, now: number): boolean {
  return !desired.rollout && !i.routed && i.health === 'starting' && now - (i.gateSince ?? i.startedAt) > desired.guard.gateTimeout;
}

/** The stop order of an instance that exited or was lost. */
function gone(i: ObservedInstance, lost: boolean): StopOrder {
  if (lost) return { id: i.id, outcome: 'lost', reason: 'the provider no longer has it (removed outside imago?)' };
  return { id: i.id, outcome: 'crashed', reason: i.startError ? `failed to start: ${i.startError}` : (i.exit ?? 'exited') };
}

function failedReason(i: ObservedInstance, buckets: Buckets, desired: DesiredService, now: number): string {
  if (buckets.unhealthy.includes(i.id)) return 'failed its health checks after being healthy';
  if (i.health === 'starting' && gateTimedOut(desired, i, now)) return `not healthy within ${Math.round(desired.guard.gateTimeout / 1000)}s`;
  return 'failed its health gate';
}

/** Why a deploy failed, in one line. */
function deployFailure(broken: ObservedInstance[], buckets: Buckets, desired: DesiredService, overdue: boolean): string {
  const startError = broken.find((i) => i.startError)?.startError;
  if (startError) return `the deploy stopped: ${startError}`;
  const unhealthy = broken.filter((i) => buckets.failed.includes(i.id) || buckets.unhealthy.includes(i.id));
  if (unhealthy.length > 0) return `${unhealthy.length} new instance(s) failed the health check`;
  const crashed = broken.filter((i) => buckets.crashed.includes(i.id));
  if (crashed.length > 0) {
    const why = [...new Set(crashed.map((i) => i.exit).filter(Boolean))].join(', ');
    return `${crashed.length} new instance(s) exited${why ? ` (${why})` : ''}`;
  }
  if (broken.length > 0) return `${broken.length} new instance(s) disappeared from the provider`;
  return overdue ? `new instances were not healthy within ${Math.round(desired.deployTimeout / 1000)}s` : 'new instances failed';
}

/** The earliest of some times still ahead (one already past was decided on, or waits on something else). */
class Earliest {
  value: number | undefined;
  constructor(private readonly now: number) {}
  at(time: number): void {
    if (Number.isFinite(time) && time > this.now && (this.value === undefined || time < this.value)) this.value = time;
  }
}

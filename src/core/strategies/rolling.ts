import type { RolloutLimits, RolloutState, RolloutStep } from '../rollout.js';
import { finishStarted, retire } from './common.js';

/**
 * Rolling: replaces the fleet in batches of up to `maxSurge + maxUnavailable`. Each batch
 * first retires up to `maxUnavailable` old instances (never taking the serving count below
 * `replicas - maxUnavailable`), then starts the batch (never running more than
 * `replicas + maxSurge`), waits for it to be healthy, shifts traffic to it and retires as
 * many old instances as it replaces. With `maxUnavailable: 0` no old instance stops before
 * its replacement serves. Returns the next batch's steps, or [] when the rollout is done.
 */
export function rolling(state: RolloutState, limits: RolloutLimits): RolloutStep[] {
  const pending = finishStarted(state, limits);
  if (pending) return pending;
  const { replicas, maxSurge, maxUnavailable } = limits;
  const { old, serving } = state;
  // More old instances than the fleet needs (a scale-down): retire the surplus first.
  const surplus = Math.max(0, old + serving - replicas);
  if (surplus > 0) return retire(surplus);
  if (serving >= replicas) return old > 0 ? retire(old) : [];

  const batch = Math.min(maxSurge + maxUnavailable, replicas - serving);
  const early = Math.min(maxUnavailable, old, batch, Math.max(0, old + serving - (replicas - maxUnavailable)));
  const start = Math.min(batch, replicas + maxSurge - (old - early) - serving);
  const steps: RolloutStep[] = early > 0 ? retire(early) : [];
  if (start > 0) {
    const unroute = Math.min(old - early, Math.max(0, old - early + serving + start - replicas));
    steps.push({ kind: 'start', count: start }, { kind: 'wait-healthy', count: start }, { kind: 'shift', route: start, unroute });
    if (unroute > 0) steps.push({ kind: 'drain', count: unroute }, { kind: 'stop', count: unroute });
  }
  return steps;
}

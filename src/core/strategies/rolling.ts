import type { RolloutLimits, RolloutState, RolloutStep } from '../rollout.js';
import { retire } from './common.js';

/**
 * Rolling: replaces old instances as fast as the budgets allow, and never faster. Each round:
 * healthy new instances get traffic at once, and as many old ones as they replace leave;
 * old instances beyond what the fleet needs leave; then new instances start while at most
 * `replicas + maxSurge` instances are old or new (draining ones are not counted: they leave
 * on their own, as Kubernetes does not count terminating pods), retiring up to
 * `maxUnavailable` old ones early when the surge alone leaves no room — never leaving fewer
 * than `replicas - maxUnavailable` serving. There is no batch barrier: a new instance starts
 * as soon as an earlier one's place frees up. With `maxUnavailable: 0` no old instance leaves
 * before its replacement serves. Returns the round's steps, or [] when the rollout is done.
 */
export function rolling(state: RolloutState, limits: RolloutLimits): RolloutStep[] {
  const { replicas, maxSurge, maxUnavailable } = limits;
  let { old, serving } = state;
  const { starting, ready } = state;
  const steps: RolloutStep[] = [];
  if (ready > 0) {
    const unroute = Math.min(old, Math.max(0, old + serving + ready - replicas));
    steps.push({ kind: 'shift', route: ready, unroute });
    if (unroute > 0) steps.push({ kind: 'drain', count: unroute }, { kind: 'stop', count: unroute });
    serving += ready;
    old -= unroute;
  }
  // More old instances than the fleet needs beside the new ones serving (a scale-down): retire them.
  const surplus = Math.min(old, Math.max(0, old + serving - replicas));
  if (surplus > 0) {
    steps.push(...retire(surplus));
    old -= surplus;
  }
  const fresh = starting + serving;
  const want = Math.max(0, replicas - fresh);
  let start = 0;
  if (want > 0) {
    let room = replicas + maxSurge - (old + fresh);
    if (room < want && maxUnavailable > 0) {
      const early = Math.max(0, Math.min(old, want - room, old + serving - (replicas - maxUnavailable)));
      if (early > 0) {
        steps.push(...retire(early));
        old -= early;
        room += early;
      }
    }
    start = Math.min(want, Math.max(0, room));
    if (start > 0) steps.push({ kind: 'start', count: start });
  }
  if (starting + start > 0) steps.push({ kind: 'wait-healthy', count: starting + start });
  return steps;
}

import type { RolloutLimits, RolloutState, RolloutStep } from '../rollout.js';

/**
 * Blue-green: starts the whole new fleet beside the old one, waits until every new instance
 * is healthy, then moves all traffic at once and retires the old fleet. Capacity never dips;
 * for a moment twice the fleet runs. Returns the round's steps, or [] when done.
 */
export function blueGreen(state: RolloutState, limits: RolloutLimits): RolloutStep[] {
  const { replicas } = limits;
  const { old, starting, ready, serving } = state;
  if (starting > 0) return [{ kind: 'wait-healthy', count: starting }];
  const missing = Math.max(0, replicas - serving - ready);
  const steps: RolloutStep[] = [];
  if (missing > 0) steps.push({ kind: 'start', count: missing }, { kind: 'wait-healthy', count: missing });
  if (missing + ready > 0 || old > 0) {
    // With the whole new fleet healthy, every old instance leaves; before that, only a surplus.
    const unroute = missing + ready + serving >= replicas ? old : 0;
    if (missing + ready > 0 || unroute > 0) steps.push({ kind: 'shift', route: missing + ready, unroute });
    if (unroute > 0) steps.push({ kind: 'drain', count: unroute }, { kind: 'stop', count: unroute });
  }
  return steps;
}

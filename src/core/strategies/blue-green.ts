import type { RolloutLimits, RolloutState, RolloutStep } from '../rollout.js';
import { finishStarted } from './common.js';

/**
 * Blue-green: starts the whole new fleet beside the old one, waits until every new instance
 * is healthy, then moves all traffic at once and retires the old fleet. Capacity never dips;
 * for a moment twice the fleet runs. Returns the next steps, or [] when done.
 */
export function blueGreen(state: RolloutState, limits: RolloutLimits): RolloutStep[] {
  const pending = finishStarted(state, limits);
  if (pending) return pending;
  const { replicas } = limits;
  const { old, serving } = state;
  const missing = Math.max(0, replicas - serving);
  if (missing === 0) return old > 0 ? [{ kind: 'shift', route: 0, unroute: old }, { kind: 'drain', count: old }, { kind: 'stop', count: old }] : [];
  const steps: RolloutStep[] = [
    { kind: 'start', count: missing },
    { kind: 'wait-healthy', count: missing },
    { kind: 'shift', route: missing, unroute: old },
  ];
  if (old > 0) steps.push({ kind: 'drain', count: old }, { kind: 'stop', count: old });
  return steps;
}

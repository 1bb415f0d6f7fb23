import type { PlannedStep, RolloutLimits, RolloutPlan, RolloutState, RolloutStep } from './rollout.js';
import { strategyFor } from './strategies/index.js';

/** A bound on rounds, far above any real rollout: a strategy that never finishes is a bug, not a plan. */
const MAX_STEPS = 100_000;

/** Applies one step to a state, assuming it succeeds (health gates pass). */
export function applyStep(state: RolloutState, step: RolloutStep): RolloutState {
  switch (step.kind) {
    case 'start':
      return { ...state, starting: state.starting + step.count };
    case 'wait-healthy':
      return { ...state, starting: state.starting - step.count, ready: state.ready + step.count };
    case 'shift':
      return { ...state, ready: state.ready - step.route, serving: state.serving + step.route, old: state.old - step.unroute, draining: state.draining + step.unroute };
    case 'drain':
      return state;
    case 'stop':
      return { ...state, draining: state.draining - step.count };
  }
}

/** Instances receiving traffic in a state. */
export function servingCount(state: RolloutState): number {
  return state.old + state.serving;
}

/** Instances running in a state. */
export function runningCount(state: RolloutState): number {
  return state.old + state.starting + state.ready + state.serving + state.draining;
}

/**
 * Plans a rollout: runs the strategy from `old` serving instances to `limits.replicas` new
 * ones, assuming every health gate passes, and records the fleet after each step. The
 * controller runs the same strategy on observed state, so the plan is what a deploy does.
 *
 * @example planRollout('rolling', 3, { replicas: 3, maxSurge: 1, maxUnavailable: 0 }).steps.length // 15
 */
export function planRollout(strategy: string, old: number, limits: RolloutLimits): RolloutPlan {
  const next = strategyFor(strategy);
  const from: RolloutState = { old, starting: 0, ready: 0, serving: 0, draining: 0 };
  let state = from;
  const steps: PlannedStep[] = [];
  let minServing = servingCount(state);
  let maxRunning = runningCount(state);
  for (let round = next(state, limits); round.length > 0; round = next(state, limits)) {
    for (const step of round) {
      state = applyStep(state, step);
      const serving = servingCount(state);
      const running = runningCount(state);
      steps.push({ step, serving, running, after: state });
      minServing = Math.min(minServing, serving);
      maxRunning = Math.max(maxRunning, running);
    }
    if (steps.length > MAX_STEPS) throw new Error(`strategy ${strategy} did not finish within ${MAX_STEPS} steps (a bug)`);
  }
  return { strategy, limits, from, steps, minServing, maxRunning };
}

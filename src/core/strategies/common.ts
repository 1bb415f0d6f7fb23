import type { RolloutLimits, RolloutState, RolloutStep } from '../rollout.js';

/** Steps that take `count` old instances out of service: unroute, drain, stop. */
export function retire(count: number): RolloutStep[] {
  return [
    { kind: 'shift', route: 0, unroute: count },
    { kind: 'drain', count },
    { kind: 'stop', count },
  ];
}

/**
 * Finishes what an interrupted round left (a rollout resumed after a restart): draining
 * instances are stopped, started ones waited for, healthy ones routed (retiring the old
 * ones they replace). Undefined when nothing is half done.
 */
export function finishStarted(state: RolloutState, limits: RolloutLimits): RolloutStep[] | undefined {
  if (state.draining > 0) return [{ kind: 'drain', count: state.draining }, { kind: 'stop', count: state.draining }];
  if (state.starting > 0) return [{ kind: 'wait-healthy', count: state.starting }];
  if (state.ready > 0) {
    const unroute = Math.min(state.old, Math.max(0, state.old + state.serving + state.ready - limits.replicas));
    const steps: RolloutStep[] = [{ kind: 'shift', route: state.ready, unroute }];
    if (unroute > 0) steps.push({ kind: 'drain', count: unroute }, { kind: 'stop', count: unroute });
    return steps;
  }
  return undefined;
}

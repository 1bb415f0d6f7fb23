import type { RolloutStep } from '../rollout.js';

/** Steps that take `count` old instances out of service: unroute, drain, stop. */
export function retire(count: number): RolloutStep[] {
  return [
    { kind: 'shift', route: 0, unroute: count },
    { kind: 'drain', count },
    { kind: 'stop', count },
  ];
}

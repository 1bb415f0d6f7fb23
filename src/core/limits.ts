import type { StrategySpec } from '../config/types.js';
import { resolveCount } from './count.js';
import type { RolloutLimits } from './rollout.js';

/**
 * A service's rollout limits as counts: percentages resolved against the replicas (surge up,
 * unavailability down); blue-green may surge by the whole fleet; at least one of the two is 1.
 *
 * @example limitsFor({ kind: 'rolling', maxSurge: { kind: 'percent', value: 25 }, maxUnavailable: { kind: 'count', value: 0 } }, 10) // { replicas: 10, maxSurge: 3, maxUnavailable: 0 }
 */
export function limitsFor(strategy: StrategySpec, replicas: number): RolloutLimits {
  if (strategy.kind === 'blue-green') return { replicas, maxSurge: replicas, maxUnavailable: 0 };
  let maxSurge = resolveCount(strategy.maxSurge, replicas, 'up');
  const maxUnavailable = resolveCount(strategy.maxUnavailable, replicas, 'down');
  if (maxSurge + maxUnavailable === 0) maxSurge = 1;
  return { replicas, maxSurge, maxUnavailable };
}

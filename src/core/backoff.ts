/** How a crash-looping release backs off: the first failure is replaced at once, then waits double. */
export interface BackoffPolicy {
  /** The wait after the second failure in a row (ms); it doubles with each one after. */
  initial: number;
  /** The longest wait (ms). */
  max: number;
  /** An instance healthy this long (ms) ends its lineage's run of failures. */
  reset: number;
}

/**
 * The run of failures in a row an instance's failure makes: its lineage's run so far
 * (`attempt`: the failures that led to its start) plus this one, or a fresh 1 when it had been
 * healthy for `reset` before failing.
 *
 * @example failureStreak({ attempt: 2, healthyAt: 1_000 }, 5_000, { initial: 1000, max: 300_000, reset: 600_000 }) // 3
 */
export function failureStreak(instance: { attempt?: number | undefined; healthyAt?: number | undefined }, failedAt: number, policy: BackoffPolicy): number {
  const healthyFor = instance.healthyAt === undefined ? 0 : failedAt - instance.healthyAt;
  return healthyFor >= policy.reset ? 1 : (instance.attempt ?? 0) + 1;
}

/**
 * How long the replacement of a failure that ended a run of `streak` failures waits: none for
 * the first, then `initial`, doubling, at most `max`.
 *
 * @example backoffDelay(4, { initial: 1000, max: 300_000, reset: 600_000 }) // 4000
 */
export function backoffDelay(streak: number, policy: BackoffPolicy): number {
  if (streak <= 1) return 0;
  return Math.min(policy.max, policy.initial * 2 ** Math.min(streak - 2, 40));
}

/** Phoenix: instances are replaced once they are older than `maxAge`, each at its own moment. */
export interface PhoenixPolicy {
  /** The age (ms) at which an instance is replaced; undefined: never. */
  maxAge: number | undefined;
  /** How far each instance's age limit may stray from `maxAge`, as a fraction (0.1: ±10%). */
  jitter: number;
}

/**
 * When an instance is due for replacement (ms since the epoch), or undefined when the
 * service has no `maxAge`. Its jitter comes from its id (a hash, so the same instance keeps
 * its due time across restarts of the control plane, and a fleet started together is spread
 * over ±jitter): deterministic, no random source needed.
 *
 * @example phoenixDueAt({ id: 'web-r1-a1b2c3', startedAt: 0 }, { maxAge: 86_400_000, jitter: 0.1 }) // somewhere in 77.76M…95.04M
 */
export function phoenixDueAt(instance: { id: string; startedAt: number }, policy: PhoenixPolicy): number | undefined {
  if (policy.maxAge === undefined) return undefined;
  const spread = Math.max(0, Math.min(1, policy.jitter));
  return instance.startedAt + Math.round(policy.maxAge * (1 + spread * unitOf(instance.id)));
}

/** A number in [-1, 1) from a string (FNV-1a, 32 bits). */
function unitOf(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash / 2 ** 31 - 1;
}

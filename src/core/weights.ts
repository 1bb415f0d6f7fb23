/** The largest weight a target can have (HAProxy's bound; the built-in router uses the same). */
export const MAX_TARGET_WEIGHT = 256;

/** A target as weighing sees it. */
export interface WeighedTarget {
  id: string;
  release: number | undefined;
  routed: boolean;
}

/**
 * Each routed target's weight (1..256; 0 for none), so that every release gets its share of
 * new requests: a release's weight is split evenly over its routed targets. Without weights
 * every routed target weighs the same. A release the weights do not name gets none — unless
 * no named release has a routed target, when every routed target weighs the same again (a
 * router never answers 503 because its weights name releases that are gone).
 */
export function targetWeights(targets: WeighedTarget[], weights: Record<string, number> | undefined): Map<string, number> {
  const out = new Map<string, number>();
  const routed = targets.filter((t) => t.routed);
  for (const t of targets) out.set(t.id, 0);
  const perRelease = new Map<string, number>();
  for (const t of routed) perRelease.set(String(t.release), (perRelease.get(String(t.release)) ?? 0) + 1);
  const named = weights ? routed.filter((t) => (weights[String(t.release)] ?? 0) > 0) : [];
  if (!weights || named.length === 0) {
    for (const t of routed) out.set(t.id, 1);
    return out;
  }
  const raw = new Map(named.map((t) => [t.id, weights[String(t.release)]! / perRelease.get(String(t.release))!]));
  const top = Math.max(...raw.values());
  for (const [id, value] of raw) out.set(id, Math.max(1, Math.round((value / top) * MAX_TARGET_WEIGHT)));
  return out;
}

/** Checks weights by release: non-negative finite numbers, at least one above 0; returns the problem, or undefined. */
export function weightsProblem(weights: Record<string, number>): string | undefined {
  const entries = Object.entries(weights);
  if (entries.length === 0) return 'expected at least one release with a weight';
  for (const [release, weight] of entries) {
    if (!/^\d+$/.test(release)) return `release '${release}': expected a release id (a whole number)`;
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0) return `release ${release}: expected a weight ≥ 0, got ${String(weight)}`;
  }
  if (!entries.some(([, w]) => w > 0)) return 'expected at least one weight above 0';
  return undefined;
}

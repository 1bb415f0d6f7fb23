/**
 * Whether a release of one environment may be promoted to another: it must have passed its
 * health gate there (gone live, and not been rolled back), and been live there for at least the
 * target's `minSoak`. Pure: the caller passes the source's releases and the time.
 */

/** What the decision needs to know of a release of the source environment. */
export interface SourceRelease {
  version: number;
  digest: string;
  status: 'pending' | 'deploying' | 'live' | 'superseded' | 'failed' | 'rolled-back';
  reason?: string | undefined;
  /** When its deploy ended: when it went live, for one that did. */
  finishedAt?: string | undefined;
}

/** Which release of the source is promoted: the live one, a version, or the newest with a digest. */
export type PromotionPick = { kind: 'live' } | { kind: 'version'; version: number } | { kind: 'digest'; digest: string };

/** A promotion that may go ahead (`overridden`: the refusals `force` set aside), or why not (`forceable`: `--force --reason` would set it aside). */
export type PromotionDecision =
  | { ok: true; release: SourceRelease; liveMs: number; overridden: string[] }
  | { ok: false; reason: string; forceable: boolean; release?: SourceRelease };

/** Statuses of a release that passed its health gate (it went live). */
const PASSED: ReadonlyArray<SourceRelease['status']> = ['live', 'superseded', 'rolled-back'];

/**
 * Decides a promotion from `source` (its name, for messages) of `pick` among `releases` (the
 * source's, any order) at `now`, against the target's `minSoak` (ms). With `force`, the
 * refusals that may be forced (never passed its gate, rolled back, not soaked long enough) are
 * returned as `overridden` instead; a release that does not exist is never forced.
 */
export function decidePromotion(input: { source: string; releases: SourceRelease[]; pick: PromotionPick; now: number; minSoak: number; force: boolean }): PromotionDecision {
  const { source, pick, now, minSoak, force } = input;
  const releases = [...input.releases].sort((a, b) => b.version - a.version);
  const release = pickRelease(releases, pick);
  if (!release) return { ok: false, forceable: false, reason: missing(source, releases, pick) };
  const refusals: string[] = [];
  const liveMs = timeLive(release, releases, now);
  if (!PASSED.includes(release.status)) {
    const why = release.status === 'failed' ? `it failed${release.reason ? `: ${release.reason}` : ''}` : `it is still ${release.status}`;
    refusals.push(`release ${release.version} of ${source} never passed its health gate there (${why})`);
  } else if (release.status === 'rolled-back') {
    refusals.push(`release ${release.version} of ${source} was rolled back there`);
  } else if (liveMs < minSoak) {
    refusals.push(`release ${release.version} of ${source} was live there for ${formatSpan(liveMs)}, and the target asks for ${formatSpan(minSoak)} (minSoak)`);
  }
  if (refusals.length === 0) return { ok: true, release, liveMs, overridden: [] };
  if (force) return { ok: true, release, liveMs, overridden: refusals };
  return { ok: false, forceable: true, release, reason: refusals.join('; ') };
}

function pickRelease(newestFirst: SourceRelease[], pick: PromotionPick): SourceRelease | undefined {
  if (pick.kind === 'live') return newestFirst.find((r) => r.status === 'live');
  if (pick.kind === 'version') return newestFirst.find((r) => r.version === pick.version);
  // The newest release of the digest: if that one failed or was rolled back, the refusal says so, rather than an older run passing for it.
  return newestFirst.find((r) => r.digest === pick.digest);
}

function missing(source: string, releases: SourceRelease[], pick: PromotionPick): string {
  if (pick.kind === 'live') return `${source} has no live release to promote${releases.length > 0 ? ` (its newest, release ${releases[0]!.version}, is ${releases[0]!.status})` : ' (it was never deployed)'}`;
  if (pick.kind === 'version') return `${source} has no release ${pick.version}${releases.length > 0 ? ` (it has ${releases.map((r) => r.version).sort((a, b) => a - b).join(', ')})` : ''}`;
  return `image ${pick.digest} was never deployed to ${source}: deploy it there first`;
}

/**
 * How long a release was live: from when it went live until now while it is live, else until
 * the next release that went live replaced it. 0 for one that never went live.
 */
function timeLive(release: SourceRelease, newestFirst: SourceRelease[], now: number): number {
  if (!PASSED.includes(release.status) || !release.finishedAt) return 0;
  const since = Date.parse(release.finishedAt);
  if (release.status === 'live') return Math.max(0, now - since);
  const next = [...newestFirst].reverse().find((r) => r.version > release.version && PASSED.includes(r.status) && r.finishedAt);
  return next ? Math.max(0, Date.parse(next.finishedAt!) - since) : 0;
}

/** A span for people: `45s`, `12m30s`, `3h05m`, `2d04h`. */
export function formatSpan(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d${String(Math.floor((s % 86_400) / 3600)).padStart(2, '0')}h`;
}

import { ConfigError } from '../errors.js';
import { describeValue } from '../config/describe-value.js';
import { isDigest } from '../oci/digest.js';
import type { Db } from '../store/db.js';
import { canonicalJson } from './canonical-json.js';
import { checkId, checkObject, checkOneOf, checkText, orUndefined } from './check.js';
import { appendEvent } from './ledger.js';
import type { PromotedFrom, Release, ReleaseStatus } from './types.js';

/** Which status a release may move to from each status; the last three are final. */
export const RELEASE_TRANSITIONS: Readonly<Record<ReleaseStatus, readonly ReleaseStatus[]>> = {
  pending: ['deploying', 'failed'],
  deploying: ['live', 'failed'],
  live: ['superseded', 'rolled-back'],
  superseded: [],
  failed: [],
  'rolled-back': [],
};

/** Every release status. */
export const RELEASE_STATUSES = Object.keys(RELEASE_TRANSITIONS) as ReleaseStatus[];

/** What a new release is made of. */
export interface NewRelease {
  service: string;
  digest: string;
  /** The rendered service config. */
  config: Record<string, unknown>;
  createdBy: string;
  /** The release whose content this one brings back. */
  rollbackOf?: number;
  /** The release of another environment this one promotes. */
  promotedFrom?: PromotedFrom;
  /** The secret versions it runs with. */
  secrets?: { env: string; versions: Record<string, number> };
}

interface ReleaseRow {
  id: number;
  service: string;
  version: number;
  digest: string;
  config: string;
  status: ReleaseStatus;
  reason: string | null;
  rollback_of: number | null;
  promoted_from: string | null;
  secrets: string | null;
  created_by: string;
  created_at: string;
  finished_at: string | null;
}

/** Records a new release (the service's next version, `pending`) and its `release.created` event, in one transaction. */
export function createRelease(db: Db, input: NewRelease, now: Date = new Date()): Release {
  const service = checkText('service', input.service);
  if (!isDigest(input.digest)) throw new ConfigError(`digest: expected a sha256 digest (sha256:<64 hex>), got ${describeValue(input.digest)}`);
  const config = canonicalJson(checkObject('config', input.config), 'config');
  const createdBy = checkText('createdBy', input.createdBy);
  const rollbackOf = input.rollbackOf === undefined ? null : checkId('rollbackOf', input.rollbackOf);
  const promotedFrom = input.promotedFrom === undefined ? null : canonicalJson(checkPromotedFrom(input.promotedFrom), 'promotedFrom');
  const secrets = input.secrets === undefined || Object.keys(input.secrets.versions).length === 0 ? null : canonicalJson(input.secrets, 'secrets');
  return db
    .transaction((): Release => {
      if (rollbackOf !== null) {
        const target = getRelease(db, rollbackOf);
        if (!target || target.service !== service) throw new ConfigError(`rollbackOf: expected a release of service '${service}', got ${rollbackOf}${target ? ` (a release of '${target.service}')` : ' (no such release)'}`);
      }
      const { next } = db.prepare(`SELECT COALESCE(MAX(version), 0) + 1 AS next FROM releases WHERE service = ?`).get(service) as { next: number };
      const { lastInsertRowid } = db
        .prepare(
          `INSERT INTO releases (service, version, digest, config, status, rollback_of, promoted_from, secrets, created_by, created_at)
           VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)`,
        )
        .run(service, next, input.digest, config, rollbackOf, promotedFrom, secrets, createdBy, now.toISOString());
      const id = Number(lastInsertRowid);
      const data: Record<string, unknown> = { version: next, digest: input.digest };
      if (rollbackOf !== null) data.rollbackOf = rollbackOf;
      if (input.promotedFrom) data.promotedFrom = input.promotedFrom;
      if (secrets) data.secrets = input.secrets;
      appendEvent(db, { actor: createdBy, kind: 'release.created', service, releaseId: id, data }, now);
      return getRelease(db, id)!;
    })
    .immediate();
}

/**
 * Moves a release to `status` if RELEASE_TRANSITIONS allows it (else a ConfigError naming both),
 * sets its reason when given and its finished time when it goes live or fails, and appends `release.<status>`.
 */
export function setReleaseStatus(db: Db, id: number, status: ReleaseStatus, reason?: string, options: { actor?: string; now?: Date } = {}): Release {
  checkId('release id', id);
  checkOneOf('status', status, RELEASE_STATUSES);
  const now = options.now ?? new Date();
  return db
    .transaction((): Release => {
      const release = getRelease(db, id);
      if (!release) throw new ConfigError(`release ${id} not found`);
      const allowed = RELEASE_TRANSITIONS[release.status];
      if (!allowed.includes(status)) {
        const next = allowed.length > 0 ? `it can go to ${allowed.join(' or ')}` : `'${release.status}' is final`;
        throw new ConfigError(`release ${id} (${release.service} v${release.version}) cannot go from '${release.status}' to '${status}': ${next}`);
      }
      const finishes = status === 'live' || status === 'failed';
      db.prepare(`UPDATE releases SET status = ?, reason = COALESCE(?, reason), finished_at = CASE WHEN ? THEN ? ELSE finished_at END WHERE id = ?`).run(
        status,
        reason ?? null,
        finishes ? 1 : 0,
        now.toISOString(),
        id,
      );
      const data: Record<string, unknown> = { from: release.status, version: release.version };
      if (reason !== undefined) data.reason = reason;
      appendEvent(db, { actor: options.actor ?? 'imago', kind: `release.${status}`, service: release.service, releaseId: id, data }, now);
      return getRelease(db, id)!;
    })
    .immediate();
}

/** The release with this id, or undefined. */
export function getRelease(db: Db, id: number): Release | undefined {
  const row = db.prepare(`SELECT * FROM releases WHERE id = ?`).get(id) as ReleaseRow | undefined;
  return row ? toRelease(row) : undefined;
}

/** The service's newest live release, or undefined when nothing is live. */
export function liveRelease(db: Db, service: string): Release | undefined {
  const row = db.prepare(`SELECT * FROM releases WHERE service = ? AND status = 'live' ORDER BY version DESC LIMIT 1`).get(service) as ReleaseRow | undefined;
  return row ? toRelease(row) : undefined;
}

/** The service's releases, newest first. */
export function listReleases(db: Db, service: string): Release[] {
  return (db.prepare(`SELECT * FROM releases WHERE service = ? ORDER BY version DESC`).all(service) as ReleaseRow[]).map(toRelease);
}

/**
 * The newest release of the service that served and was not rolled back (`live` or `superseded`),
 * older than `beforeId` when given: what a rollback of release `beforeId` goes back to.
 */
export function lastGoodRelease(db: Db, service: string, beforeId?: number): Release | undefined {
  const row = db
    .prepare(`SELECT * FROM releases WHERE service = ? AND status IN ('live', 'superseded') AND id < ? ORDER BY version DESC LIMIT 1`)
    .get(service, beforeId ?? Number.MAX_SAFE_INTEGER) as ReleaseRow | undefined;
  return row ? toRelease(row) : undefined;
}

function checkPromotedFrom(from: PromotedFrom): PromotedFrom {
  return { env: checkText('promotedFrom.env', from.env), service: checkText('promotedFrom.service', from.service), version: checkId('promotedFrom.version', from.version) };
}

function toRelease(row: ReleaseRow): Release {
  return {
    id: row.id,
    service: row.service,
    version: row.version,
    digest: row.digest,
    config: JSON.parse(row.config) as Record<string, unknown>,
    status: row.status,
    reason: orUndefined(row.reason),
    rollbackOf: orUndefined(row.rollback_of),
    promotedFrom: row.promoted_from ? (JSON.parse(row.promoted_from) as PromotedFrom) : undefined,
    secrets: row.secrets ? (JSON.parse(row.secrets) as Release['secrets']) : undefined,
    createdBy: row.created_by,
    createdAt: row.created_at,
    finishedAt: orUndefined(row.finished_at),
  };
}

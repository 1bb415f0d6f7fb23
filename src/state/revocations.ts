import { ConfigError } from '../errors.js';
import { isDigest } from '../oci/digest.js';
import type { Db } from '../store/db.js';
import { checkText } from './check.js';
import { appendEvent } from './ledger.js';

/** A digest that may never be deployed again: why, by whom, when. */
export interface Revocation {
  digest: string;
  reason: string;
  revokedBy: string;
  revokedAt: string;
}

interface Row {
  digest: string;
  reason: string;
  revoked_by: string;
  revoked_at: string;
}

const toRevocation = (row: Row): Revocation => ({ digest: row.digest, reason: row.reason, revokedBy: row.revoked_by, revokedAt: row.revoked_at });

/**
 * Revokes `digest`: from now on no deploy or rollback anywhere takes it, and `imago status`
 * flags what still runs it. In the ledger (`image.revoked`). Revoking a digest that is
 * already revoked changes nothing and returns the first revocation.
 */
export function revokeDigest(db: Db, input: { digest: string; reason: string; actor: string }, now: Date = new Date()): { revocation: Revocation; created: boolean } {
  if (!isDigest(input.digest)) throw new ConfigError(`revoke: expected an image digest (sha256:<64 hex>), got '${input.digest}'`);
  const reason = checkText('reason', input.reason.trim());
  const actor = checkText('actor', input.actor);
  return db
    .transaction(() => {
      const existing = revocationOf(db, input.digest);
      if (existing) return { revocation: existing, created: false };
      db.prepare('INSERT INTO revocations (digest, reason, revoked_by, revoked_at) VALUES (?, ?, ?, ?)').run(input.digest, reason, actor, now.toISOString());
      appendEvent(db, { actor, kind: 'image.revoked', data: { digest: input.digest, reason } }, now);
      return { revocation: revocationOf(db, input.digest)!, created: true };
    })
    .immediate();
}

/** The revocation of `digest`, or undefined when it may be deployed. */
export function revocationOf(db: Db, digest: string): Revocation | undefined {
  const row = db.prepare('SELECT * FROM revocations WHERE digest = ?').get(digest) as Row | undefined;
  return row ? toRevocation(row) : undefined;
}

/** Every revocation, oldest first. */
export function listRevocations(db: Db): Revocation[] {
  return (db.prepare('SELECT * FROM revocations ORDER BY revoked_at, digest').all() as Row[]).map(toRevocation);
}

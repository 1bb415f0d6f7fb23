import { ConfigError } from '../errors.js';
import { describeValue } from '../config/describe-value.js';
import type { Db } from '../store/db.js';
import { checkText } from './check.js';
import { appendEvent } from './ledger.js';
import { LockError } from './errors.js';
import type { Lock } from './types.js';

interface LockRow {
  name: string;
  owner: string;
  expires_at: number;
}

/**
 * Takes the lock `name` for `owner` for `ttlMs`: when it is free, its lease has run out (a crashed
 * holder), or `owner` already holds it (a renewal). Held by someone else: a LockError naming them and when it ends.
 */
export function acquireLock(db: Db, name: string, owner: string, ttlMs: number, now: number = Date.now()): Lock {
  checkLockArgs(name, owner, ttlMs);
  return db
    .transaction((): Lock => {
      const row = readRow(db, name);
      if (row && row.owner !== owner && row.expires_at > now) throw heldBy(row, now);
      const lock = { name, owner, expiresAt: now + ttlMs };
      db.prepare(`INSERT INTO locks (name, owner, expires_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at`).run(
        name,
        owner,
        lock.expiresAt,
      );
      // Taken (not renewed by its holder): in the ledger, with whose lease ran out, if any.
      if (!(row && row.owner === owner && row.expires_at > now)) lockEvent(db, 'lock.acquired', name, owner, now, row ? { from: row.owner, expired: true } : {});
      return lock;
    })
    .immediate();
}

/** Extends `owner`'s lease on `name` to `now + ttlMs`; a LockError when `owner` no longer holds it. */
export function renewLock(db: Db, name: string, owner: string, ttlMs: number, now: number = Date.now()): Lock {
  checkLockArgs(name, owner, ttlMs);
  return db
    .transaction((): Lock => {
      const row = readRow(db, name);
      if (!row) throw new LockError(`failed to renew lock '${name}': '${owner}' does not hold it (it was released)`, { lock: name });
      if (row.owner !== owner) throw heldBy(row, now, `failed to renew lock '${name}' for '${owner}': `);
      db.prepare(`UPDATE locks SET expires_at = ? WHERE name = ?`).run(now + ttlMs, name);
      return { name, owner, expiresAt: now + ttlMs };
    })
    .immediate();
}

/** Releases `owner`'s lock `name`: true when it was held, false when already free; a LockError when someone else holds it. */
export function releaseLock(db: Db, name: string, owner: string, now: number = Date.now()): boolean {
  checkText('lock name', name);
  checkText('lock owner', owner);
  return db
    .transaction((): boolean => {
      const row = readRow(db, name);
      if (!row) return false;
      if (row.owner !== owner) throw heldBy(row, now, `failed to release lock '${name}' for '${owner}': `);
      db.prepare(`DELETE FROM locks WHERE name = ?`).run(name);
      lockEvent(db, 'lock.released', name, owner, now);
      return true;
    })
    .immediate();
}

/**
 * Frees `name` whoever holds it: only for a control plane starting up, whose predecessor (the
 * only writer) is gone and so can hold nothing. Returns the owner it took the lock from.
 */
export function breakLock(db: Db, name: string): string | undefined {
  checkText('lock name', name);
  return db
    .transaction((): string | undefined => {
      const row = readRow(db, name);
      if (row) {
        db.prepare(`DELETE FROM locks WHERE name = ?`).run(name);
        lockEvent(db, 'lock.broken', name, 'imago', Date.now(), { from: row.owner });
      }
      return row?.owner;
    })
    .immediate();
}

/**
 * A lock's event in the ledger: the actor is the owner's first part (the deploy's actor, or
 * `imago-server` for the control plane's own lock), the service that of a `service:<name>` lock.
 */
function lockEvent(db: Db, kind: string, name: string, owner: string, now: number, extra: Record<string, unknown> = {}): void {
  const service = /^service:(.+)$/.exec(name)?.[1];
  appendEvent(db, { actor: owner.split(':')[0] || owner, kind, ...(service ? { service } : {}), data: { lock: name, owner, ...extra } }, new Date(now));
}

/** Who holds the lock `name` now, or undefined when it is free or its lease ran out. */
export function readLock(db: Db, name: string, now: number = Date.now()): Lock | undefined {
  const row = readRow(db, name);
  return row && row.expires_at > now ? { name: row.name, owner: row.owner, expiresAt: row.expires_at } : undefined;
}

function readRow(db: Db, name: string): LockRow | undefined {
  return db.prepare(`SELECT * FROM locks WHERE name = ?`).get(name) as LockRow | undefined;
}

function heldBy(row: LockRow, now: number, prefix = ''): LockError {
  const left = row.expires_at - now;
  const when = left > 0 ? `until ${new Date(row.expires_at).toISOString()} (in ${Math.ceil(left / 1000)}s)` : `(its lease ran out at ${new Date(row.expires_at).toISOString()})`;
  return new LockError(`${prefix}lock '${row.name}' is held by '${row.owner}' ${when}`, { lock: row.name, owner: row.owner, expiresAt: row.expires_at });
}

function checkLockArgs(name: string, owner: string, ttlMs: number): void {
  checkText('lock name', name);
  checkText('lock owner', owner);
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) throw new ConfigError(`lock ttl: expected a positive number of milliseconds, got ${describeValue(ttlMs)}`);
}

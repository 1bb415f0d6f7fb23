import { randomBytes } from 'node:crypto';
import { acquireLock, releaseLock, renewLock } from '../state/lock.js';
import type { Db } from '../store/db.js';

const LOCK_TTL_MS = 30_000;

/**
 * Runs `fn` holding the lock `name` (a LockError, which the API answers 409, when someone
 * else holds it), renewing the lease while it runs. The lock is always released; a failure
 * to release never hides `fn`'s own error.
 */
export async function withLock<T>(db: Db, name: string, actor: string, fn: () => Promise<T>): Promise<T> {
  const owner = `${actor}:${process.pid}:${randomBytes(4).toString('hex')}`;
  acquireLock(db, name, owner, LOCK_TTL_MS);
  const renew = setInterval(() => {
    try {
      renewLock(db, name, owner, LOCK_TTL_MS);
    } catch {
      // Lost the lock (another owner took it after it expired): the release below says so.
    }
  }, LOCK_TTL_MS / 3);
  renew.unref();
  let failed = false;
  try {
    return await fn();
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    clearInterval(renew);
    try {
      releaseLock(db, name, owner);
    } catch (error) {
      if (!failed) throw error;
    }
  }
}

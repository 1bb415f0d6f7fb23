import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../src/errors.js';
import { LockError } from '../../src/state/errors.js';
import { listEvents } from '../../src/state/ledger.js';
import { acquireLock, breakLock, readLock, releaseLock, renewLock } from '../../src/state/lock.js';
import { dbFactory } from '../support/fresh-db.js';

const { freshDb, reopen } = await dbFactory('imago-state-lock-');
const T0 = Date.parse('2030-01-01T00:00:00Z');
const lockError = (pattern: RegExp) => (e: unknown) => e instanceof LockError && pattern.test(e.message);

describe('locks', () => {
  it('is in the ledger when taken, taken over from a lapsed holder, released and broken; never for a renewal', () => {
    const db = freshDb();
    acquireLock(db, 'service:web', 'alice@h:1:aa', 1_000, 0);
    acquireLock(db, 'service:web', 'alice@h:1:aa', 1_000, 500);
    renewLock(db, 'service:web', 'alice@h:1:aa', 1_000, 700);
    acquireLock(db, 'service:web', 'bob@h:2:bb', 1_000, 5_000);
    releaseLock(db, 'service:web', 'bob@h:2:bb', 5_100);
    acquireLock(db, 'control-plane', 'imago-server:h:3', 1_000, 6_000);
    breakLock(db, 'control-plane');
    const events = listEvents(db).map((e) => [e.kind, e.actor, e.service ?? null, e.data.from ?? null]);
    assert.deepEqual(events, [
      ['lock.acquired', 'alice@h', 'web', null],
      ['lock.acquired', 'bob@h', 'web', 'alice@h:1:aa'],
      ['lock.released', 'bob@h', 'web', null],
      ['lock.acquired', 'imago-server', null, null],
      ['lock.broken', 'imago', null, 'imago-server:h:3'],
    ]);
  });

  it('is taken when free, and refused to another owner with who holds it and until when', () => {
    const db = freshDb();
    assert.deepEqual(acquireLock(db, 'deploy:web', 'alice', 30_000, T0), { name: 'deploy:web', owner: 'alice', expiresAt: T0 + 30_000 });
    assert.throws(
      () => acquireLock(db, 'deploy:web', 'bob', 30_000, T0 + 10_000),
      (e) => e instanceof LockError && e.message === "lock 'deploy:web' is held by 'alice' until 2030-01-01T00:00:30.000Z (in 20s)" && e.owner === 'alice' && e.expiresAt === T0 + 30_000,
    );
    assert.equal(acquireLock(db, 'deploy:api', 'bob', 30_000, T0).owner, 'bob', 'other names are other locks');
    assert.deepEqual(readLock(db, 'deploy:web', T0 + 1), { name: 'deploy:web', owner: 'alice', expiresAt: T0 + 30_000 });
  });

  it('is renewed by its owner, by acquiring again or by renewLock', () => {
    const db = freshDb();
    acquireLock(db, 'l', 'alice', 1_000, T0);
    assert.equal(acquireLock(db, 'l', 'alice', 1_000, T0 + 900).expiresAt, T0 + 1_900);
    assert.equal(renewLock(db, 'l', 'alice', 1_000, T0 + 1_800).expiresAt, T0 + 2_800);
    assert.throws(() => acquireLock(db, 'l', 'bob', 1_000, T0 + 2_500), lockError(/held by 'alice'/));
    assert.throws(() => renewLock(db, 'l', 'bob', 1_000, T0 + 2_500), lockError(/^failed to renew lock 'l' for 'bob': lock 'l' is held by 'alice'/));
  });

  it('expires when its owner crashes: another owner takes it after the lease, and the old owner cannot renew it', () => {
    const db = freshDb();
    acquireLock(db, 'deploy:web', 'controller-1', 5_000, T0);
    // controller-1 dies without releasing; time passes (a fake clock).
    assert.throws(() => acquireLock(db, 'deploy:web', 'controller-2', 5_000, T0 + 4_999), LockError);
    assert.equal(readLock(db, 'deploy:web', T0 + 5_000), undefined, 'a lease that ran out holds nothing');
    assert.equal(acquireLock(db, 'deploy:web', 'controller-2', 5_000, T0 + 5_000).owner, 'controller-2');
    assert.throws(() => renewLock(db, 'deploy:web', 'controller-1', 5_000, T0 + 5_001), lockError(/held by 'controller-2'/));
    assert.throws(() => releaseLock(db, 'deploy:web', 'controller-1', T0 + 5_001), LockError);
  });

  it('is released only by its owner', () => {
    const db = freshDb();
    acquireLock(db, 'l', 'alice', 60_000, T0);
    assert.throws(() => releaseLock(db, 'l', 'bob', T0), lockError(/^failed to release lock 'l' for 'bob': lock 'l' is held by 'alice'/));
    assert.equal(readLock(db, 'l', T0)?.owner, 'alice');
    assert.equal(releaseLock(db, 'l', 'alice'), true);
    assert.equal(releaseLock(db, 'l', 'alice'), false, 'releasing a free lock is a no-op');
    assert.equal(acquireLock(db, 'l', 'bob', 60_000, T0).owner, 'bob');
    assert.throws(() => renewLock(db, 'free', 'bob', 1_000, T0), lockError(/does not hold it/));
  });

  it('is shared by connections to the same file', () => {
    const db = freshDb();
    const other = reopen(db.name);
    acquireLock(db, 'l', 'alice', 60_000, T0);
    assert.throws(() => acquireLock(other, 'l', 'bob', 60_000, T0), LockError);
  });

  it('checks its arguments', () => {
    const db = freshDb();
    assert.throws(() => acquireLock(db, 'l', 'alice', 0), (e) => e instanceof ConfigError && e.message === 'lock ttl: expected a positive number of milliseconds, got 0');
    assert.throws(() => acquireLock(db, '', 'alice', 1), ConfigError);
  });
});

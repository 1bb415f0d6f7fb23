import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError } from '../../src/errors.js';
import { sha256 } from '../../src/oci/digest.js';
import { listEvents } from '../../src/state/ledger.js';
import { createRelease, getRelease, lastGoodRelease, listReleases, liveRelease, setReleaseStatus } from '../../src/state/releases.js';
import type { ReleaseStatus } from '../../src/state/types.js';
import { type Db } from '../../src/store/db.js';
import { dbFactory } from '../support/fresh-db.js';
import { ImageStore } from '../../src/store/image-store.js';

const { dir, freshDb } = await dbFactory('imago-state-releases-');
const configError = (pattern: RegExp) => (e: unknown) => e instanceof ConfigError && pattern.test(e.message);
const digest = (n: number) => sha256(`image ${n}`);
const newRelease = (db: Db, service = 'web', n = 1) => createRelease(db, { service, digest: digest(n), config: { replicas: 2, port: 8080 }, createdBy: 'alice' });

/** The status changes that take a fresh release to each status. */
const PATH_TO: Record<ReleaseStatus, ReleaseStatus[]> = {
  pending: [],
  deploying: ['deploying'],
  live: ['deploying', 'live'],
  failed: ['failed'],
  superseded: ['deploying', 'live', 'superseded'],
  'rolled-back': ['deploying', 'live', 'rolled-back'],
};
const ALLOWED = new Set(['pending→deploying', 'pending→failed', 'deploying→live', 'deploying→failed', 'live→superseded', 'live→rolled-back']);
const STATUSES = Object.keys(PATH_TO) as ReleaseStatus[];

describe('releases', () => {
  it('numbers versions 1, 2, 3 per service, pending, each with a release.created event', () => {
    const db = freshDb();
    const web1 = newRelease(db, 'web', 1);
    const api1 = newRelease(db, 'api', 2);
    const web2 = newRelease(db, 'web', 3);
    assert.deepEqual([web1.version, api1.version, web2.version], [1, 1, 2]);
    assert.equal(web2.status, 'pending');
    assert.deepEqual(web2.config, { port: 8080, replicas: 2 });
    assert.equal(web2.createdBy, 'alice');
    assert.equal(web2.finishedAt, undefined);
    const events = listEvents(db, { service: 'web' });
    assert.deepEqual(events.map((e) => [e.kind, e.releaseId, e.actor, e.data.version]), [
      ['release.created', web1.id, 'alice', 1],
      ['release.created', web2.id, 'alice', 2],
    ]);
    assert.deepEqual(listReleases(db, 'web').map((r) => r.version), [2, 1]);
  });

  it('writes nothing when its ledger event cannot be written (one transaction)', () => {
    const db = freshDb();
    db.exec(`CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk full'); END`);
    assert.throws(() => newRelease(db), /disk full/);
    assert.deepEqual(listReleases(db, 'web'), []);
  });

  it('refuses bad input with the field, what it expected and what it got', () => {
    const db = freshDb();
    assert.throws(() => createRelease(db, { service: 'web', digest: 'latest', config: {}, createdBy: 'a' }), configError(/^digest: expected a sha256 digest .*got "latest"$/));
    assert.throws(() => createRelease(db, { service: '', digest: digest(1), config: {}, createdBy: 'a' }), configError(/^service: expected a non-empty string, got ""$/));
    assert.throws(() => createRelease(db, { service: 'web', digest: digest(1), config: [] as never, createdBy: 'a' }), configError(/^config: expected an object, got an empty array$/));
    assert.throws(() => createRelease(db, { service: 'web', digest: digest(1), config: { n: NaN }, createdBy: 'a' }), configError(/^config\.n: expected a finite number, got NaN$/));
    const api = newRelease(db, 'api');
    assert.throws(() => createRelease(db, { service: 'web', digest: digest(1), config: {}, createdBy: 'a', rollbackOf: api.id }), configError(/rollbackOf: expected a release of service 'web', got 1 \(a release of 'api'\)/));
  });

  for (const from of STATUSES) {
    for (const to of STATUSES) {
      const allowed = ALLOWED.has(`${from}→${to}`);
      it(`${allowed ? 'allows' : 'refuses'} ${from} → ${to}`, () => {
        const db = freshDb();
        const { id } = newRelease(db);
        for (const step of PATH_TO[from]) setReleaseStatus(db, id, step);
        const before = listEvents(db).length;
        if (allowed) {
          const release = setReleaseStatus(db, id, to, 'because', { actor: 'bob' });
          assert.equal(release.status, to);
          assert.equal(release.reason, 'because');
          const last = listEvents(db).at(-1)!;
          assert.deepEqual([last.kind, last.releaseId, last.actor, last.data.from, last.data.reason], [`release.${to}`, id, 'bob', from, 'because']);
        } else {
          assert.throws(() => setReleaseStatus(db, id, to), (e) => e instanceof ConfigError && e.message.includes(`cannot go from '${from}' to '${to}'`));
          assert.equal(getRelease(db, id)!.status, from);
          assert.equal(listEvents(db).length, before, 'a refused transition records nothing');
        }
      });
    }
  }

  it('sets finished_at when a release goes live or fails, and keeps it afterwards', () => {
    const db = freshDb();
    const { id } = newRelease(db);
    assert.equal(setReleaseStatus(db, id, 'deploying').finishedAt, undefined);
    const live = setReleaseStatus(db, id, 'live', undefined, { now: new Date('2030-01-01T00:00:00Z') });
    assert.equal(live.finishedAt, '2030-01-01T00:00:00.000Z');
    assert.equal(setReleaseStatus(db, id, 'superseded', 'by v2', { now: new Date('2031-01-01T00:00:00Z') }).finishedAt, '2030-01-01T00:00:00.000Z');
  });

  it('refuses to change a release’s content or delete it, even by SQL', () => {
    const db = freshDb();
    const { id } = newRelease(db);
    assert.throws(() => db.prepare(`UPDATE releases SET digest = ? WHERE id = ?`).run(digest(9), id), /releases are immutable/);
    assert.throws(() => db.prepare(`UPDATE releases SET config = '{}' WHERE id = ?`).run(id), /releases are immutable/);
    assert.throws(() => db.prepare(`DELETE FROM releases WHERE id = ?`).run(id), /never deleted/);
  });

  it('finds the live release and, for a rollback, the last good one before it', () => {
    const db = freshDb();
    const ship = (n: number) => {
      const r = newRelease(db, 'web', n);
      setReleaseStatus(db, r.id, 'deploying');
      return r;
    };
    assert.equal(liveRelease(db, 'web'), undefined);
    assert.equal(lastGoodRelease(db, 'web'), undefined);
    const v1 = ship(1);
    setReleaseStatus(db, v1.id, 'live');
    const v2 = ship(2);
    setReleaseStatus(db, v2.id, 'failed', 'health gate');
    const v3 = ship(3);
    setReleaseStatus(db, v1.id, 'superseded');
    setReleaseStatus(db, v3.id, 'live');
    assert.equal(liveRelease(db, 'web')!.id, v3.id);
    assert.equal(lastGoodRelease(db, 'web')!.id, v3.id, 'without beforeId: the live one counts');
    assert.equal(lastGoodRelease(db, 'web', v3.id)!.id, v1.id, 'skips the failed v2');

    // v3 turns out bad: roll back to v1's content as a new release v4.
    const v4 = createRelease(db, { service: 'web', digest: v1.digest, config: v1.config, createdBy: 'alice', rollbackOf: v1.id });
    setReleaseStatus(db, v4.id, 'deploying');
    setReleaseStatus(db, v3.id, 'rolled-back', 'errors after deploy');
    setReleaseStatus(db, v4.id, 'live');
    assert.equal(v4.version, 4);
    assert.equal(v4.rollbackOf, v1.id);
    assert.equal(liveRelease(db, 'web')!.id, v4.id);
    assert.equal(lastGoodRelease(db, 'web', v4.id)!.id, v1.id, 'a rolled-back release is not good');
    assert.equal(lastGoodRelease(db, 'api'), undefined);
  });

  it('keeps released digests as gc roots of the image store sharing the database', async () => {
    const home = join(dir, 'home');
    const store = await ImageStore.open(home);
    try {
      const release = newRelease(store.db, 'web', 42);
      assert.ok(store.rootDigests().has(release.digest as `sha256:${string}`));
    } finally {
      store.close();
    }
  });
});

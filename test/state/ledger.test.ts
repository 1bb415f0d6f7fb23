import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { canonicalJson } from '../../src/state/canonical-json.js';
import { appendEvent, GENESIS_HASH, listEvents, verifyLedger } from '../../src/state/ledger.js';
import { type Db } from '../../src/store/db.js';
import { dbFactory } from '../support/fresh-db.js';

const { freshDb, reopen } = await dbFactory('imago-state-ledger-');

/** A ledger of five events over two services. */
function seeded(): Db {
  const db = freshDb();
  const at = new Date('2030-01-01T00:00:00Z');
  appendEvent(db, { actor: 'alice', kind: 'release.created', service: 'web', releaseId: 1, data: { version: 1 } }, at);
  appendEvent(db, { actor: 'imago', kind: 'instance.created', service: 'web', releaseId: 1, instance: 'web-1', data: { port: 8080 } }, at);
  appendEvent(db, { actor: 'bob', kind: 'release.created', service: 'api', releaseId: 2 }, at);
  appendEvent(db, { actor: 'imago', kind: 'release.live', service: 'web', releaseId: 1, data: { from: 'deploying' } }, at);
  appendEvent(db, { actor: 'imago', kind: 'gc.ran', data: { removed: [] } }, at);
  return db;
}

/** Removes the append-only triggers, as an attacker with the database file could. */
function dropTriggers(db: Db): void {
  db.exec(`DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;`);
}

describe('ledger', () => {
  it('chains each event to the one before, from 64 zeros, with sha256(prev_hash + canonical JSON)', () => {
    const db = seeded();
    const events = listEvents(db);
    assert.deepEqual(events.map((e) => e.seq), [1, 2, 3, 4, 5]);
    assert.equal(events[0]!.prevHash, GENESIS_HASH);
    for (let i = 1; i < events.length; i++) assert.equal(events[i]!.prevHash, events[i - 1]!.hash);
    const second = events[1]!;
    const fields = { seq: 2, at: '2030-01-01T00:00:00.000Z', actor: 'imago', kind: 'instance.created', service: 'web', releaseId: 1, instance: 'web-1', data: { port: 8080 } };
    assert.equal(second.hash, createHash('sha256').update(second.prevHash + canonicalJson(fields)).digest('hex'));
    assert.deepEqual(events[2]!.data, {}, 'no data is an empty object');
    assert.equal(events[4]!.service, undefined);
    assert.deepEqual(verifyLedger(db), { ok: true, count: 5, head: events[4]!.hash });
    assert.deepEqual(verifyLedger(freshDb()), { ok: true, count: 0, head: GENESIS_HASH });
  });

  it('lists by service, after a seq, up to a limit', () => {
    const db = seeded();
    assert.deepEqual(listEvents(db, { service: 'web' }).map((e) => e.seq), [1, 2, 4]);
    assert.deepEqual(listEvents(db, { sinceSeq: 2 }).map((e) => e.seq), [3, 4, 5]);
    assert.deepEqual(listEvents(db, { sinceSeq: 1, limit: 2 }).map((e) => e.seq), [2, 3]);
    assert.deepEqual(listEvents(db, { service: 'web', releaseId: 1, sinceSeq: 1 }).map((e) => e.seq), [2, 4]);
  });

  it('hashes data by value: key order and undefined members do not matter', () => {
    const a = appendEvent(freshDb(), { actor: 'a', kind: 'k', data: { b: 1, a: { y: [1, 'x'], x: null, u: undefined } } }, new Date(0));
    const b = appendEvent(freshDb(), { actor: 'a', kind: 'k', data: { a: { x: null, y: [1, 'x'] }, b: 1 } }, new Date(0));
    assert.equal(a.hash, b.hash);
    assert.equal(canonicalJson({ b: [1, { d: 1, c: 'é' }], a: true }), '{"a":true,"b":[1,{"c":"é","d":1}]}');
  });

  it('refuses UPDATE and DELETE on events (append-only triggers)', () => {
    const db = seeded();
    assert.throws(() => db.prepare(`UPDATE events SET actor = 'mallory' WHERE seq = 2`).run(), /append-only: events cannot be changed/);
    assert.throws(() => db.prepare(`DELETE FROM events WHERE seq = 5`).run(), /append-only: events cannot be deleted/);
    assert.equal(verifyLedger(db).ok, true);
  });

  it('finds an edited event even with the triggers dropped', () => {
    const db = seeded();
    dropTriggers(db);
    db.prepare(`UPDATE events SET data = '{"port":9999}' WHERE seq = 2`).run();
    const check = verifyLedger(db);
    assert.equal(check.ok, false);
    assert.ok(!check.ok && check.seq === 2 && /does not match its hash/.test(check.reason), JSON.stringify(check));
  });

  it('finds an edited event whose hash the attacker recomputed: the next event no longer links', () => {
    const db = seeded();
    dropTriggers(db);
    const row = db.prepare(`SELECT * FROM events WHERE seq = 3`).get() as { prev_hash: string };
    const fields = { seq: 3, at: '2030-01-01T00:00:00.000Z', actor: 'mallory', kind: 'release.created', service: 'api', releaseId: 2, instance: null, data: {} };
    const forged = createHash('sha256').update(row.prev_hash + canonicalJson(fields)).digest('hex');
    db.prepare(`UPDATE events SET actor = 'mallory', hash = ? WHERE seq = 3`).run(forged);
    const check = verifyLedger(db);
    assert.ok(!check.ok && check.seq === 4 && /prev_hash/.test(check.reason), JSON.stringify(check));
  });

  it('finds a deleted event', () => {
    const db = seeded();
    dropTriggers(db);
    db.prepare(`DELETE FROM events WHERE seq = 2`).run();
    const check = verifyLedger(db);
    assert.ok(!check.ok && check.seq === 3 && /events 2–2 before it are missing/.test(check.reason), JSON.stringify(check));
  });

  it('keeps the chain when appends come from two connections to the same file', () => {
    const db = seeded();
    const other = reopen(db.name);
    for (let i = 0; i < 10; i++) appendEvent(i % 2 ? db : other, { actor: 'a', kind: 'k', data: { i } });
    assert.deepEqual(verifyLedger(db), { ok: true, count: 15, head: listEvents(db).at(-1)!.hash });
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../src/errors.js';
import { sha256 } from '../../src/oci/digest.js';
import { getInstance, listInstances, recordInstance, setInstanceState } from '../../src/state/instances.js';
import { listEvents, verifyLedger } from '../../src/state/ledger.js';
import { createRelease } from '../../src/state/releases.js';
import type { InstanceState } from '../../src/state/types.js';
import { type Db } from '../../src/store/db.js';
import { dbFactory } from '../support/fresh-db.js';

const { freshDb } = await dbFactory('imago-state-instances-');
const release = (db: Db, service = 'web') => createRelease(db, { service, digest: sha256(service), config: {}, createdBy: 'alice' });

describe('instances', () => {
  it('records instances, moves them forward, lists them by service, release and state', () => {
    const db = freshDb();
    const v1 = release(db);
    const api = release(db, 'api');
    const t = new Date('2030-01-01T00:00:00Z');
    const a = recordInstance(db, { id: 'web-a', service: 'web', releaseId: v1.id, provider: 'process', port: 31001 }, t);
    recordInstance(db, { id: 'web-b', service: 'web', releaseId: v1.id, provider: 'process' }, new Date(t.getTime() + 1));
    recordInstance(db, { id: 'api-a', service: 'api', releaseId: api.id, provider: 'docker' }, t);
    assert.deepEqual(a, {
      id: 'web-a', service: 'web', releaseId: v1.id, provider: 'process', port: 31001, state: 'starting', createdAt: t.toISOString(), updatedAt: t.toISOString(),
      attempt: 0, replaces: undefined, healthyAt: undefined, endedAt: undefined, reason: undefined, streak: undefined, awaiting: false, output: undefined,
    });
    const later = new Date('2030-01-01T00:01:00Z');
    assert.equal(setInstanceState(db, 'web-a', 'healthy', { now: later }).updatedAt, later.toISOString());
    setInstanceState(db, 'web-a', 'serving');
    setInstanceState(db, 'web-b', 'failed', { reason: 'health gate: 3 probes failed' });
    assert.deepEqual(listInstances(db, 'web').map((i) => [i.id, i.state]), [['web-a', 'serving'], ['web-b', 'failed']]);
    assert.deepEqual(listInstances(db, 'web', { states: ['starting', 'healthy', 'serving'] }).map((i) => i.id), ['web-a']);
    assert.deepEqual(listInstances(db, 'web', { releaseId: api.id }), []);
    assert.deepEqual(listEvents(db, { service: 'web' }).filter((e) => e.instance).map((e) => [e.kind, e.instance]), [
      ['instance.created', 'web-a'],
      ['instance.created', 'web-b'],
      ['instance.healthy', 'web-a'],
      ['instance.serving', 'web-a'],
      ['instance.failed', 'web-b'],
    ]);
    assert.equal(listEvents(db).at(-1)!.data.reason, 'health gate: 3 probes failed');
    assert.equal(verifyLedger(db).ok, true);
  });

  const moves: [InstanceState, InstanceState, boolean][] = [
    ['starting', 'healthy', true],
    ['starting', 'stopped', true],
    ['healthy', 'draining', true],
    ['serving', 'draining', true],
    ['draining', 'stopped', true],
    ['draining', 'failed', true],
    ['healthy', 'starting', false],
    ['draining', 'serving', false],
    ['stopped', 'starting', false],
    ['stopped', 'failed', false],
    ['failed', 'stopped', false],
  ];
  for (const [from, to, allowed] of moves) {
    it(`${allowed ? 'allows' : 'refuses'} ${from} → ${to}`, () => {
      const db = freshDb();
      recordInstance(db, { id: 'i', service: 'web', releaseId: release(db).id, provider: 'fake', state: from });
      if (allowed) assert.equal(setInstanceState(db, 'i', to).state, to);
      else assert.throws(() => setInstanceState(db, 'i', to), (e) => e instanceof ConfigError && e.message === `instance 'i' cannot go from '${from}' to '${to}'`);
    });
  }

  it('treats the same state as a no-op and refuses unknown ids, duplicates and another service’s release', () => {
    const db = freshDb();
    const v1 = release(db);
    recordInstance(db, { id: 'i', service: 'web', releaseId: v1.id, provider: 'fake' });
    const events = listEvents(db).length;
    assert.equal(setInstanceState(db, 'i', 'starting').state, 'starting');
    assert.equal(listEvents(db).length, events);
    assert.throws(() => setInstanceState(db, 'nope', 'healthy'), /instance 'nope' not found/);
    assert.throws(() => recordInstance(db, { id: 'i', service: 'web', releaseId: v1.id, provider: 'fake' }), /already recorded/);
    assert.throws(() => recordInstance(db, { id: 'j', service: 'api', releaseId: v1.id, provider: 'fake' }), /releaseId: expected a release of service 'api'/);
    assert.throws(() => setInstanceState(db, 'i', 'running' as InstanceState), /state: expected one of starting, healthy/);
    assert.equal(getInstance(db, 'j'), undefined);
  });
});

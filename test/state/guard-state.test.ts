import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { ConfigError } from '../../src/errors.js';
import { sha256 } from '../../src/oci/digest.js';
import { listDrift, recordDrift } from '../../src/state/drift.js';
import { awaitingReplacement, dropAwaiting, endInstance, getInstance, lastFailure, markHealthy, recordInstance, setInstanceState } from '../../src/state/instances.js';
import { listEvents, verifyLedger } from '../../src/state/ledger.js';
import { createRelease } from '../../src/state/releases.js';
import { ensureService, getService, listServices, scaleService, setDesired, setListen } from '../../src/state/services.js';
import { migrate, openDb } from '../../src/store/db.js';
import { dbFactory } from '../support/fresh-db.js';

const { dir, freshDb } = await dbFactory('imago-state-guard-');

describe('desired state as rows', () => {
  it('records a service once, then its desired release and replicas, and who changed them', () => {
    const db = freshDb();
    const first = ensureService(db, { name: 'web', env: 'dev', provider: 'process', replicas: 3, actor: 'alice' });
    assert.deepEqual([first.releaseId, first.replicas, first.listen], [undefined, 3, undefined]);
    assert.equal(ensureService(db, { name: 'web', env: 'dev', provider: 'docker', replicas: 9, actor: 'bob' }).provider, 'process', 'the first row stays');
    const v1 = createRelease(db, { service: 'web', digest: sha256('1'), config: {}, createdBy: 'alice' });
    setDesired(db, 'web', { releaseId: v1.id, replicas: 3, reason: 'deploy', actor: 'alice' });
    scaleService(db, 'web', 10, 'carol');
    scaleService(db, 'web', 10, 'carol'); // no change, no event
    setListen(db, 'web', { host: '127.0.0.1', port: 8080 });
    const web = getService(db, 'web')!;
    assert.deepEqual([web.releaseId, web.replicas, web.listen, web.updatedBy], [v1.id, 10, { host: '127.0.0.1', port: 8080 }, 'carol']);
    assert.deepEqual(listServices(db).map((s) => s.name), ['web']);
    const kinds = listEvents(db, { service: 'web' }).map((e) => `${e.kind}:${e.actor}`);
    assert.deepEqual(kinds, ['service.created:alice', 'release.created:alice', 'service.desired:alice', 'service.scaled:carol']);
    assert.deepEqual(listEvents(db, { service: 'web' }).at(-1)!.data, { from: 3, to: 10 });
    assert.throws(() => scaleService(db, 'api', 2, 'x'), /service 'api' has no desired state: deploy it first/);
    assert.throws(() => scaleService(db, 'web', -1, 'x'), ConfigError);
    const other = createRelease(db, { service: 'api', digest: sha256('a'), config: {}, createdBy: 'x' });
    assert.throws(() => setDesired(db, 'web', { releaseId: other.id, replicas: 1, reason: 'x', actor: 'x' }), /expected a release of service 'web'/);
    assert.equal(verifyLedger(db).ok, true);
  });

  it('a home from before the guard gets a desired state for each live service', () => {
    const file = join(dir, 'v2.db');
    const old = new Database(file);
    migrate(old, { to: 2 }); // the schema an imago of the last release left
    // Rows as that schema has them (today's createRelease writes columns it did not have).
    const createdAt = new Date().toISOString();
    const release = (service: string, version: number, digest: string, config: Record<string, unknown>, status: string) => {
      const { lastInsertRowid } = old
        .prepare(`INSERT INTO releases (service, version, digest, config, status, created_by, created_at) VALUES (?, ?, ?, ?, ?, 'a', ?)`)
        .run(service, version, digest, JSON.stringify(config), status, createdAt);
      return { id: Number(lastInsertRowid), createdAt };
    };
    const v1 = release('web', 1, sha256('1'), { replicas: 4, provider: 'docker', listen: { host: '127.0.0.1', port: 9000 } }, 'live');
    release('web', 2, sha256('2'), { replicas: 9 }, 'failed');
    // And a service whose first deploy was running when the old imago stopped.
    const first = release('api', 1, sha256('a'), { replicas: 2, provider: 'docker' }, 'pending');
    // (As the schema of then has it: no from_replicas yet.)
    old.prepare(`INSERT INTO deploys (service, release_id, plan, state, started_at) VALUES ('api', ?, '{}', 'running', ?)`).run(first.id, new Date().toISOString());
    old.close();
    const again = openDb(file);
    assert.deepEqual(getService(again, 'web'), {
      name: 'web', env: 'default', provider: 'docker', releaseId: v1.id, replicas: 4, listen: { host: '127.0.0.1', port: 9000 }, protocol: 'http', tls: undefined,
      createdAt: v1.createdAt, updatedAt: v1.createdAt, updatedBy: 'imago',
    });
    const api = getService(again, 'api')!;
    assert.deepEqual([api.releaseId, api.replicas, api.provider], [undefined, 0, 'docker'], 'a first deploy caught mid-way: its loop stops what it started');
    again.close();
  });
});

describe('failures awaiting replacement', () => {
  it('ends an instance once, keeps its place waiting until a replacement takes it, and finds the last failure', () => {
    const db = freshDb();
    const v1 = createRelease(db, { service: 'web', digest: sha256('1'), config: {}, createdBy: 'a' });
    const t = new Date('2030-01-01T00:00:00Z');
    recordInstance(db, { id: 'a', service: 'web', releaseId: v1.id, provider: 'process' }, t);
    markHealthy(db, 'a', { now: new Date(t.getTime() + 500) });
    markHealthy(db, 'a', { now: new Date(t.getTime() + 900) });
    assert.deepEqual([getInstance(db, 'a')!.state, getInstance(db, 'a')!.healthyAt], ['healthy', '2030-01-01T00:00:00.500Z']);
    setInstanceState(db, 'a', 'serving');
    endInstance(db, 'a', { state: 'crashed', reason: 'killed by SIGKILL', streak: 1, awaiting: true, now: new Date(t.getTime() + 2000) });
    assert.equal(endInstance(db, 'a', { state: 'stopped', reason: 'later' })!.state, 'crashed', 'the first ending is the true one');
    assert.deepEqual(awaitingReplacement(db, 'web').map((i) => [i.id, i.streak, i.reason]), [['a', 1, 'killed by SIGKILL']]);
    recordInstance(db, { id: 'b', service: 'web', releaseId: v1.id, provider: 'process', attempt: 1, replaces: 'a' });
    assert.deepEqual(awaitingReplacement(db, 'web'), []);
    assert.deepEqual([getInstance(db, 'b')!.attempt, getInstance(db, 'b')!.replaces], [1, 'a']);
    endInstance(db, 'b', { state: 'failed', reason: 'failed its health gate', streak: 2, awaiting: true, now: new Date(t.getTime() + 5000) });
    assert.equal(lastFailure(db, 'web', v1.id)!.id, 'b');
    dropAwaiting(db, ['b']);
    assert.deepEqual(awaitingReplacement(db, 'web'), []);
    assert.throws(() => setInstanceState(db, 'b', 'serving'), /cannot go from 'failed' to 'serving'/);
    const events = listEvents(db, { service: 'web' }).filter((e) => e.instance);
    assert.deepEqual(events.map((e) => e.kind), ['instance.created', 'instance.healthy', 'instance.serving', 'instance.crashed', 'instance.created', 'instance.failed']);
    assert.deepEqual(events[3]!.data, { from: 'serving', reason: 'killed by SIGKILL', streak: 1, awaitingReplacement: true });
    assert.deepEqual(events[4]!.data.replaces, 'a');
  });
});

describe('drift findings', () => {
  it('records each finding of an instance once, in the ledger too, and lists them', () => {
    const db = freshDb();
    const found = recordDrift(db, { service: 'web', instance: 'a', releaseId: undefined, finding: 'docker exec: sh', action: 'replace' });
    assert.equal(found?.finding, 'docker exec: sh');
    assert.equal(recordDrift(db, { service: 'web', instance: 'a', finding: 'docker exec: sh', action: 'replace' }), undefined);
    recordDrift(db, { service: 'api', instance: 'b', finding: 'nsenter', action: 'report' });
    assert.deepEqual(listDrift(db).map((f) => `${f.service}/${f.instance}: ${f.finding} (${f.action})`), ['web/a: docker exec: sh (replace)', 'api/b: nsenter (report)']);
    assert.deepEqual(listDrift(db, { service: 'api' }).map((f) => f.instance), ['b']);
    assert.deepEqual(listEvents(db).map((e) => e.kind), ['drift.found', 'drift.found']);
  });
});

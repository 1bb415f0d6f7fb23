import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../src/errors.js';
import { sha256 } from '../../src/oci/digest.js';
import { createDeploy, finishDeploy, getDeploy, listDeploys, runningDeploys } from '../../src/state/deploys.js';
import { LockError } from '../../src/state/errors.js';
import { listEvents } from '../../src/state/ledger.js';
import { createRelease } from '../../src/state/releases.js';
import { type Db } from '../../src/store/db.js';
import { dbFactory } from '../support/fresh-db.js';

const { freshDb } = await dbFactory('imago-state-deploys-');
const release = (db: Db, service = 'web', n = 1) => createRelease(db, { service, digest: sha256(`${service} ${n}`), config: {}, createdBy: 'alice' });
const plan = [{ step: 'start', count: 2 }, { step: 'wait-healthy' }, { step: 'shift' }];

describe('deploys', () => {
  it('records a running deploy with its plan, and finishes it with state, reason and transcript', () => {
    const db = freshDb();
    const v1 = release(db, 'web', 1);
    const v2 = release(db, 'web', 2);
    const t = new Date('2030-01-01T00:00:00Z');
    const deploy = createDeploy(db, { service: 'web', releaseId: v2.id, fromReleaseId: v1.id, plan, actor: 'alice' }, t);
    assert.deepEqual(deploy, {
      id: deploy.id, service: 'web', releaseId: v2.id, fromReleaseId: v1.id, plan, state: 'running',
      startedAt: t.toISOString(), finishedAt: undefined, reason: undefined, transcript: undefined, fromReplicas: undefined,
    });
    assert.deepEqual(runningDeploys(db).map((d) => d.id), [deploy.id]);
    const transcript = { probes: [{ instance: 'web-a', status: 500, at: 1 }], logs: { 'web-a': ['listening', 'TypeError: boom'] } };
    const failed = finishDeploy(db, deploy.id, { state: 'failed', reason: 'health gate: web-a answered 500', transcript }, new Date('2030-01-01T00:02:00Z'));
    assert.equal(failed.state, 'failed');
    assert.equal(failed.reason, 'health gate: web-a answered 500');
    assert.deepEqual(failed.transcript, transcript);
    assert.equal(failed.finishedAt, '2030-01-01T00:02:00.000Z');
    assert.deepEqual(runningDeploys(db), []);
    assert.deepEqual(listEvents(db, { service: 'web' }).filter((e) => e.kind.startsWith('deploy.')).map((e) => [e.kind, e.actor, e.releaseId, e.data.deploy]), [
      ['deploy.started', 'alice', v2.id, deploy.id],
      ['deploy.failed', 'imago', v2.id, deploy.id],
    ]);
    assert.throws(() => finishDeploy(db, deploy.id, { state: 'succeeded' }), (e) => e instanceof ConfigError && /already ended: failed/.test(e.message));
  });

  it('allows one running deploy per service, and lists deploys newest first', () => {
    const db = freshDb();
    const web = release(db, 'web');
    const api = release(db, 'api');
    const first = createDeploy(db, { service: 'web', releaseId: web.id, plan });
    assert.throws(() => createDeploy(db, { service: 'web', releaseId: web.id, plan }), (e) => e instanceof LockError && /already has a deploy running \(#1/.test(e.message));
    const other = createDeploy(db, { service: 'api', releaseId: api.id, plan });
    assert.deepEqual(runningDeploys(db).map((d) => d.id), [first.id, other.id], 'what a restarted control plane finds');
    finishDeploy(db, first.id, { state: 'aborted', reason: 'control plane restarted' });
    const second = createDeploy(db, { service: 'web', releaseId: web.id, plan });
    assert.deepEqual(listDeploys(db, 'web').map((d) => d.id), [second.id, first.id]);
    assert.equal(getDeploy(db, first.id)!.state, 'aborted');
  });

  it('refuses bad input', () => {
    const db = freshDb();
    const web = release(db, 'web');
    assert.throws(() => createDeploy(db, { service: 'api', releaseId: web.id, plan }), /releaseId: expected a release of service 'api', got 1/);
    assert.throws(() => createDeploy(db, { service: 'web', releaseId: web.id, plan: undefined }), /plan: expected a JSON value, got nothing/);
    assert.throws(() => finishDeploy(db, 99, { state: 'succeeded' }), /deploy 99 not found/);
    assert.throws(() => finishDeploy(db, 1, { state: 'running' as 'failed' }), /state: expected one of succeeded, failed, aborted, got "running"/);
  });
});

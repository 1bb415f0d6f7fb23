import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { LogCollection } from '../../src/logs/log-collection.js';
import { sha256 } from '../../src/oci/digest.js';
import { FakeProvider } from '../../src/providers/fake/fake-provider.js';
import { endInstance, recordInstance } from '../../src/state/instances.js';
import { createRelease } from '../../src/state/releases.js';
import { openDb } from '../../src/store/db.js';

const home = await mkdtemp(join(tmpdir(), 'imago-log-collection-'));
after(() => rm(home, { recursive: true, force: true }));

describe('log collection', () => {
  it("labels lines from the state database, keeps the streams apart, and lets go of an ended instance's output once every line of it is stored", async () => {
    const db = openDb(join(home, 'imago.db'));
    const release = createRelease(db, { service: 'web', digest: sha256('x'), config: {}, createdBy: 'alice' });
    recordInstance(db, { id: 'web-r1-live', service: 'web', releaseId: release.id, provider: 'process' });
    recordInstance(db, { id: 'web-r1-gone', service: 'web', releaseId: release.id, provider: 'process' });
    const provider = new FakeProvider();
    provider.print('web-r1-live', 'stdout', 'up\n');
    provider.print('web-r1-live', 'stderr', 'a warning\n');
    provider.print('web-r1-gone', 'stdout', 'bye\nlast words');
    endInstance(db, 'web-r1-gone', { state: 'stopped', reason: 'replaced' });
    const asked: string[] = [];
    // No settle time: an ended instance's output is read to its end at once.
    const logs = new LogCollection(home, db, async (name) => (asked.push(name), provider), () => 'prod', { settleMs: 0 });
    await logs.pass();
    const lines = logs.store.query({ service: 'web' }).map((l) => [l.instance, l.release, l.env, l.stream, l.text]);
    assert.deepEqual(lines.sort(), [
      ['web-r1-gone', 1, 'prod', 'stdout', 'bye'],
      ['web-r1-gone', 1, 'prod', 'stdout', 'last words'],
      ['web-r1-live', 1, 'prod', 'stderr', 'a warning'],
      ['web-r1-live', 1, 'prod', 'stdout', 'up'],
    ]);
    assert.deepEqual([...new Set(asked)], ['process'], 'read through the provider the instances were recorded with');
    assert.equal(provider.world.output.has('web-r1-gone'), false, "the ended instance's output is let go of, its lines are stored");
    assert.equal(provider.world.output.has('web-r1-live'), true, "a running instance's output stays");
    provider.print('web-r1-live', 'stderr', 'another\n');
    await logs.pass();
    assert.deepEqual(logs.store.query({ service: 'web', instance: 'web-r1-live' }).map((l) => l.text), ['up', 'a warning', 'another'], 'read on, nothing twice');
    assert.equal(logs.lastError, undefined);
    await logs.close();
    db.close();
  });

  it('reads on the instances of other providers when one cannot be made, and says why', async () => {
    const db = openDb(join(home, 'imago-2.db'));
    const release = createRelease(db, { service: 'api', digest: sha256('y'), config: {}, createdBy: 'alice' });
    recordInstance(db, { id: 'api-r1-a', service: 'api', releaseId: release.id, provider: 'docker' });
    recordInstance(db, { id: 'api-r1-b', service: 'api', releaseId: release.id, provider: 'process' });
    const provider = new FakeProvider();
    provider.print('api-r1-b', 'stdout', 'here\n');
    mkdirSync(join(home, 'two'));
    const logs = new LogCollection(join(home, 'two'), db, async (name) => {
      if (name === 'docker') throw new Error('connect ENOENT /var/run/docker.sock');
      return provider;
    }, () => 'prod');
    await logs.pass();
    assert.deepEqual(logs.store.query({ service: 'api' }).map((l) => l.text), ['here']);
    assert.match(logs.lastError ?? '', /the docker provider: connect ENOENT/);
    await logs.close();
    db.close();
  });
});

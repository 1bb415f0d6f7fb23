import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { LogCollection } from '../../src/logs/log-collection.js';
import { sha256 } from '../../src/oci/digest.js';
import { endInstance, recordInstance } from '../../src/state/instances.js';
import { createRelease } from '../../src/state/releases.js';
import { openDb } from '../../src/store/db.js';

const home = await mkdtemp(join(tmpdir(), 'imago-log-collection-'));
after(() => rm(home, { recursive: true, force: true }));

describe('log collection', () => {
  it("labels lines from the state database, and removes an ended instance's file once every line of it is stored", async () => {
    const db = openDb(join(home, 'imago.db'));
    mkdirSync(join(home, 'logs'), { recursive: true });
    const release = createRelease(db, { service: 'web', digest: sha256('x'), config: {}, createdBy: 'alice' });
    recordInstance(db, { id: 'web-r1-live', service: 'web', releaseId: release.id, provider: 'process' });
    recordInstance(db, { id: 'web-r1-gone', service: 'web', releaseId: release.id, provider: 'process' });
    writeFileSync(join(home, 'logs', 'web-r1-live.log'), 'up\n');
    writeFileSync(join(home, 'logs', 'web-r1-gone.log'), 'bye\nlast words');
    endInstance(db, 'web-r1-gone', { state: 'stopped', reason: 'replaced' });
    // No settle time: an ended instance's file is read to its end at once.
    const logs = new LogCollection(home, db, 'prod', { settleMs: 0 });
    logs.pass();
    const lines = logs.store.query({ service: 'web' }).map((l) => [l.instance, l.release, l.env, l.text]);
    assert.deepEqual(lines.sort(), [
      ['web-r1-gone', 1, 'prod', 'bye'],
      ['web-r1-gone', 1, 'prod', 'last words'],
      ['web-r1-live', 1, 'prod', 'up'],
    ]);
    assert.equal(existsSync(join(home, 'logs', 'web-r1-gone.log')), false, 'the ended instance\'s file is gone, its lines are stored');
    assert.equal(existsSync(join(home, 'logs', 'web-r1-live.log')), true, 'a running instance\'s file stays');
    assert.equal(logs.lastError, undefined);
    await logs.close();
    db.close();
  });
});

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { seal, unseal } from '../../src/secrets/seal.js';
import { createRelease, setReleaseStatus } from '../../src/state/releases.js';
import { currentVersions, listSecrets, pruneSecrets, removeSecret, secretValue, setSecret } from '../../src/state/secrets.js';
import { sha256 } from '../../src/oci/digest.js';
import { dbFactory } from '../support/fresh-db.js';

const { freshDb } = await dbFactory('imago-secrets-');
const key = randomBytes(32);

describe('secrets at rest', () => {
  it('seals with AES-256-GCM bound to its place: another place, another key or a changed byte does not open', () => {
    const sealed = seal(key, Buffer.from('hunter2'), 'prod/db/1');
    assert.equal(unseal(key, sealed, 'prod/db/1').toString(), 'hunter2');
    assert.throws(() => unseal(key, sealed, 'prod/db/2'), /does not open/);
    assert.throws(() => unseal(randomBytes(32), sealed, 'prod/db/1'), /does not open/);
    const changed = { ...sealed, data: Buffer.from(sealed.data) };
    changed.data[0] = changed.data[0]! ^ 1;
    assert.throws(() => unseal(key, changed, 'prod/db/1'), /does not open/);
  });

  it('versions, never in clear in the database; kept while a release could run or be rolled back to; removed names pruned to what runs', () => {
    const db = freshDb();
    assert.equal(setSecret(db, key, { env: 'prod', name: 'db', value: Buffer.from('v1-secret'), actor: 'alice' }), 1);
    const release = (versions: Record<string, number>, status: 'live' | 'failed') => {
      const r = createRelease(db, { service: 'web@prod', digest: sha256(String(Math.random())), config: {}, createdBy: 'a', secrets: { env: 'prod', versions } });
      setReleaseStatus(db, r.id, 'deploying');
      setReleaseStatus(db, r.id, status);
      return r;
    };
    const r1 = release({ db: 1 }, 'live');
    assert.equal(setSecret(db, key, { env: 'prod', name: 'db', value: Buffer.from('v2-secret'), actor: 'alice' }), 2);
    assert.equal(setSecret(db, key, { env: 'prod', name: 'db', value: Buffer.from('v3-secret'), actor: 'alice' }), 3);
    assert.deepEqual(listSecrets(db, 'prod').map((s) => [s.name, s.latest, s.versions]), [['db', 3, [1, 3]]], 'v2 no release used: pruned; v1 the live release uses: kept');
    assert.equal(secretValue(db, key, 'prod', 'db', 1).toString(), 'v1-secret');
    assert.throws(() => secretValue(db, key, 'prod', 'db', 2), /version 2 of secret "db" of prod is no longer kept/);
    assert.deepEqual(currentVersions(db, 'prod', ['db']), { db: 3 });
    assert.throws(() => currentVersions(db, 'staging', ['db']), /secret "db" is not set in staging: set it with `imago secret set staging db`/);
    const dump = JSON.stringify(db.prepare('SELECT * FROM secret_versions').all(), (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString('latin1') : v));
    assert.ok(!dump.includes('v1-secret') && !dump.includes('v3-secret'), 'sealed, not in clear');

    setReleaseStatus(db, r1.id, 'superseded');
    release({ db: 3 }, 'failed');
    assert.equal(pruneSecrets(db, 'prod'), 0, 'a superseded release can be rolled back to: its version stays');
    assert.deepEqual(removeSecret(db, 'prod', 'db', 'alice'), { deleted: 2, kept: 0 }, 'removed: nothing runs it, so every version goes');
    assert.throws(() => currentVersions(db, 'prod', ['db']), /secret "db" is removed in prod/);
    assert.equal(setSecret(db, key, { env: 'prod', name: 'db', value: Buffer.from('again'), actor: 'alice' }), 4, 'numbers go on: an old release never names a new value');
  });
});

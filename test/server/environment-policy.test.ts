import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { policyFor, storedPolicy } from '../../src/server/environment-policy.js';
import { createPublicKey } from 'node:crypto';
import { keyIdOf as keyIdOfKey } from '../../src/sign/dsse.js';
import { listEvents } from '../../src/state/ledger.js';
import { dbFactory } from '../support/fresh-db.js';

const { freshDb } = await dbFactory('imago-policy-');
const pem = () => generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) as string;
const keyIdOf = (key: string | import('node:crypto').KeyObject) => keyIdOfKey(typeof key === 'string' ? createPublicKey(key) : key);
const admin = { admin: true, actor: 'alice' };
const ci = { admin: false, actor: 'ci' };

describe('the policy of an environment, held by the server', () => {
  it("an admin's config sets it; anyone else is held to the stricter of it and what they sent, and cannot swap its keys", () => {
    const db = freshDb();
    const release = pem();
    const mine = pem();
    assert.deepEqual(policyFor(db, 'prod', undefined, ci), { minSoak: 0, keys: undefined }, 'nothing stored, nothing sent: no policy');
    assert.equal(policyFor(db, 'prod', { minSoak: 3_600_000, keys: [release] }, admin).minSoak, 3_600_000);
    assert.deepEqual(storedPolicy(db, 'prod'), { minSoak: 3_600_000, keys: [release] });

    const lowered = policyFor(db, 'prod', { minSoak: 0 }, ci);
    assert.equal(lowered.minSoak, 3_600_000, 'a lower minSoak is not taken');
    assert.deepEqual(lowered.keys?.map(keyIdOf), [keyIdOf(release)], 'no policy sent is no way out');
    assert.deepEqual(policyFor(db, 'prod', { minSoak: 0, keys: [mine] }, ci).keys?.map(keyIdOf), [keyIdOf(release)], 'its own key is not trusted');
    assert.equal(policyFor(db, 'prod', { minSoak: 7_200_000 }, ci).minSoak, 7_200_000, 'a stricter one holds');
    assert.deepEqual(storedPolicy(db, 'prod'), { minSoak: 3_600_000, keys: [release] }, 'and changes nothing stored');
    assert.deepEqual(policyFor(db, 'staging', { minSoak: 0, keys: [mine] }, ci).keys?.map(keyIdOf), [keyIdOf(mine)], 'where none is stored, what was sent holds');

    // An admin whose config no longer requires signatures lifts it, in the ledger.
    assert.equal(policyFor(db, 'prod', { minSoak: 0 }, admin).keys, undefined);
    assert.equal(policyFor(db, 'prod', undefined, ci).keys, undefined);
    const changes = listEvents(db, {}).filter((e) => e.kind === 'environment.policy');
    assert.deepEqual(changes.map((e) => [e.actor, e.data.requireSignature]), [['alice', [keyIdOf(release)]], ['alice', null]]);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../src/errors.js';
import { sha256 } from '../../src/oci/digest.js';
import { listEvents, verifyLedger } from '../../src/state/ledger.js';
import { listRevocations, revocationOf, revokeDigest } from '../../src/state/revocations.js';
import { dbFactory } from '../support/fresh-db.js';

const { freshDb } = await dbFactory('imago-state-revocations-');

describe('revocations', () => {
  it('revokes a digest once, in the ledger with its reason and actor; a second revoke changes nothing', () => {
    const db = freshDb();
    const digest = sha256('image one');
    const first = revokeDigest(db, { digest, reason: 'CVE-2026-1234 in openssl', actor: 'alice@build' }, new Date('2030-01-01T00:00:00Z'));
    assert.equal(first.created, true);
    assert.deepEqual(first.revocation, { digest, reason: 'CVE-2026-1234 in openssl', revokedBy: 'alice@build', revokedAt: '2030-01-01T00:00:00.000Z' });
    const again = revokeDigest(db, { digest, reason: 'another reason', actor: 'bob@build' });
    assert.equal(again.created, false);
    assert.equal(again.revocation.reason, 'CVE-2026-1234 in openssl', 'the first revocation stands');
    assert.deepEqual(listEvents(db).map((e) => [e.kind, e.actor, e.data.digest, e.data.reason]), [['image.revoked', 'alice@build', digest, 'CVE-2026-1234 in openssl']]);
    assert.equal(verifyLedger(db).ok, true);
    assert.equal(revocationOf(db, sha256('image two')), undefined);
    assert.deepEqual(listRevocations(db).map((r) => r.digest), [digest]);
  });

  it('refuses what is not a digest, and an empty reason, saying what it expected', () => {
    const db = freshDb();
    assert.throws(() => revokeDigest(db, { digest: 'hello:1', reason: 'x', actor: 'a' }), (e) => e instanceof ConfigError && /expected an image digest \(sha256:<64 hex>\), got 'hello:1'/.test(e.message));
    assert.throws(() => revokeDigest(db, { digest: sha256('x'), reason: '  ', actor: 'a' }), (e) => e instanceof ConfigError && /reason: expected a non-empty string/.test(e.message));
    assert.deepEqual(listRevocations(db), []);
    assert.deepEqual(listEvents(db), []);
  });
});

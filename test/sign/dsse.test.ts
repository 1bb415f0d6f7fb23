import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { keyIdOf, pae, signEnvelope, verifyEnvelope } from '../../src/sign/dsse.js';

describe('DSSE envelopes', () => {
  const mine = generateKeyPairSync('ed25519');
  const theirs = generateKeyPairSync('ed25519');

  it("PAE is the spec's encoding", () => {
    // The example of the DSSE protocol document.
    assert.equal(pae('http://example.com/HelloWorld', Buffer.from('hello world')).toString(), 'DSSEv1 29 http://example.com/HelloWorld 11 hello world');
    assert.equal(pae('t', Buffer.from('é')).toString(), 'DSSEv1 1 t 2 é', 'lengths in bytes');
  });

  it('verifies what a trusted key signed; names a stranger; catches a changed payload or type', () => {
    const envelope = signEnvelope(Buffer.from('{"a":1}'), 'application/vnd.in-toto+json', mine.privateKey);
    assert.equal(envelope.signatures[0]!.keyid, keyIdOf(mine.publicKey));
    const ok = verifyEnvelope(envelope, [theirs.publicKey, mine.publicKey]);
    assert.ok(ok.ok && ok.payload.toString() === '{"a":1}');
    const stranger = verifyEnvelope(envelope, [theirs.publicKey]);
    assert.ok(!stranger.ok && stranger.reason === 'unknown-key' && /not among the 1 trusted key/.test(stranger.message));
    const changed = verifyEnvelope({ ...envelope, payload: Buffer.from('{"a":2}').toString('base64') }, [mine.publicKey]);
    assert.ok(!changed.ok && changed.reason === 'bad-signature');
    const retyped = verifyEnvelope({ ...envelope, payloadType: 'text/plain' }, [mine.publicKey]);
    assert.ok(!retyped.ok && retyped.reason === 'bad-signature', 'the type is signed too');
    for (const bad of [undefined, {}, { payloadType: 'x', payload: '', signatures: [] }]) assert.equal((verifyEnvelope(bad, [mine.publicKey]) as { reason: string }).reason, 'malformed');
  });
});

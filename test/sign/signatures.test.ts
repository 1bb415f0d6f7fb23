import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { bake } from '../../src/bake/baker.js';
import { exportImage } from '../../src/image/export.js';
import { importImage } from '../../src/image/import.js';
import { digestHex, type Digest } from '../../src/oci/digest.js';
import { signEnvelope, type Envelope } from '../../src/sign/dsse.js';
import { ensureSigningKey } from '../../src/sign/keys.js';
import { SLSA_PROVENANCE } from '../../src/sign/provenance.js';
import { ENVELOPE_MEDIA_TYPE, signaturesOf, storeEnvelope, verifyImage } from '../../src/sign/signatures.js';
import { ImageStore } from '../../src/store/image-store.js';
import { makeImage } from '../fixtures/make-image.js';
import { imageSpec } from '../support/spec.js';
import { tempDir } from '../support/temp.js';

describe('signed provenance', () => {
  it('every bake signs an in-toto statement about its digest; verify tells unsigned, a stranger and a changed signature apart', async () => {
    const home = await tempDir('imago-sign-');
    const store = await ImageStore.open(home);
    after(() => store.close());
    const spec = imageSpec({ name: 'app', context: home, entrypoint: ['/app'], env: [['V', '1']] });
    const { digest } = await bake({ store, spec });
    const key = ensureSigningKey(home);
    const signed = await verifyImage(store, digest, [key.publicKey]);
    assert.ok(signed.ok, signed.ok ? '' : signed.message);
    if (signed.ok) {
      assert.equal(signed.keyid, key.keyid);
      assert.equal(signed.statement.predicateType, SLSA_PROVENANCE);
      assert.deepEqual((signed.statement.subject as Array<{ digest: { sha256: string } }>)[0]!.digest.sha256, digestHex(digest));
    }
    await bake({ store, spec });
    assert.equal(signaturesOf(store, digest).length, 1, 'a rebake of the same digest signs nothing new');

    const stranger = generateKeyPairSync('ed25519');
    const unknown = await verifyImage(store, digest, [stranger.publicKey]);
    assert.ok(!unknown.ok && unknown.reason === 'unknown-key');

    const plain = await makeImage(store, { name: 'plain', tag: '1', files: { 'a.txt': 'a' } });
    const unsigned = await verifyImage(store, plain.digest, [key.publicKey]);
    assert.ok(!unsigned.ok && unsigned.reason === 'unsigned' && /has no signature/.test(unsigned.message));

    // A forged statement under a real signature: changed after signing.
    const envelope = JSON.parse((await readFile(join(home, 'store', 'blobs', 'sha256', digestHex(await envelopeOf(store, digest))))).toString()) as Envelope;
    const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString()) as { subject: Array<{ digest: { sha256: string } }> };
    statement.subject[0]!.digest.sha256 = digestHex(plain.digest);
    await storeEnvelope(store, plain.digest, { ...envelope, payload: Buffer.from(JSON.stringify(statement)).toString('base64') }, key.keyid);
    const forged = await verifyImage(store, plain.digest, [key.publicKey]);
    assert.ok(!forged.ok && forged.reason === 'tampered' && /changed after signing/.test(forged.message), forged.ok ? '' : forged.message);

    // A genuine signature of another image, stored as this one's: about the wrong image.
    const other = await makeImage(store, { name: 'other', tag: '1', files: { 'b.txt': 'b' } });
    await storeEnvelope(store, other.digest, envelope, key.keyid);
    const misplaced = await verifyImage(store, other.digest, [key.publicKey]);
    assert.ok(!misplaced.ok && misplaced.reason === 'tampered' && new RegExp(`about ${digest}, not ${other.digest}`).test(misplaced.message));

    // The envelope's file edited in the store.
    const file = join(home, 'store', 'blobs', 'sha256', digestHex(await envelopeOf(store, digest)));
    const bytes = await readFile(file);
    await writeFile(file, Buffer.concat([bytes, Buffer.from(' ')]));
    const edited = await verifyImage(store, digest, [key.publicKey]);
    assert.ok(!edited.ok && edited.reason === 'tampered' && /does not match its digest/.test(edited.message));
    await writeFile(file, bytes);
    assert.ok((await verifyImage(store, digest, [key.publicKey])).ok);
  });

  it('gc keeps the signatures of kept images and drops those of removed ones; an export carries them', async () => {
    const home = await tempDir('imago-sign-gc-');
    const store = await ImageStore.open(home);
    after(() => store.close());
    const { digest } = await bake({ store, spec: imageSpec({ name: 'app', context: home, entrypoint: ['/app'] }) });
    const key = ensureSigningKey(home);
    const doomed = await makeImage(store, { name: 'doomed', tag: '1', files: { 'x': 'x' } });
    await storeEnvelope(store, doomed.digest, signEnvelope(Buffer.from('{}'), 'application/vnd.in-toto+json', key.privateKey), key.keyid);
    await store.remove('doomed:1');
    await store.gc({ graceMs: 0 });
    assert.equal(signaturesOf(store, doomed.digest).length, 0);
    assert.ok((await verifyImage(store, digest, [key.publicKey])).ok, 'the kept image is still signed, every blob there');

    const out = join(home, 'export');
    await exportImage(store, 'app:latest', out, { format: 'oci-dir' });
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: Digest; artifactType?: string; annotations?: Record<string, string> }> };
    const artifact = index.manifests.find((m) => m.artifactType === ENVELOPE_MEDIA_TYPE)!;
    assert.ok(artifact && !artifact.annotations, `listed by digest, not by name: ${JSON.stringify(index.manifests)}`);
    const manifest = JSON.parse(await readFile(join(out, 'blobs', 'sha256', digestHex(artifact.digest)), 'utf8')) as { subject: { digest: Digest }; layers: Array<{ digest: Digest }> };
    assert.equal(manifest.subject.digest, digest);
    const envelope = JSON.parse(await readFile(join(out, 'blobs', 'sha256', digestHex(manifest.layers[0]!.digest)), 'utf8')) as Envelope;
    assert.equal(envelope.payloadType, 'application/vnd.in-toto+json');

    // An import takes the image and leaves the signature aside (an artifact is not an image).
    const again = await ImageStore.open(await tempDir('imago-sign-import-'));
    after(() => again.close());
    assert.equal((await importImage(again, out)).digest, digest);
  });
});

/** The digest of the envelope blob of an image's first signature. */
async function envelopeOf(store: ImageStore, digest: Digest): Promise<Digest> {
  const [signature] = signaturesOf(store, digest);
  const manifest = JSON.parse((await store.blobs.read(signature!.manifest)).toString()) as { layers: Array<{ digest: Digest }> };
  return manifest.layers[0]!.digest;
}

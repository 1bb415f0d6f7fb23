import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { ImageError } from '../../src/errors.js';
import { importImage } from '../../src/image/import.js';
import { sha256 } from '../../src/oci/digest.js';
import type { ImageStore } from '../../src/store/image-store.js';
import { blobName, ociArchive } from '../fixtures/archives.js';
import { archiveFile } from '../fixtures/assert-refused.js';
import { makeImage } from '../fixtures/make-image.js';
import { tarBuffer } from '../fixtures/tar.js';
import { tempStore } from '../fixtures/temp-store.js';

// How an import names what it stored: all its tags at once (one transaction, one index.json
// write), and never by moving a tag off another image unless asked to.

async function indexRefs(store: ImageStore): Promise<string[]> {
  const index = JSON.parse(await readFile(join(store.blobs.root, 'index.json'), 'utf8')) as { manifests: Array<{ annotations: Record<string, string> }> };
  return index.manifests.map((m) => m.annotations['org.opencontainers.image.ref.name']!);
}

test('an import with many tags writes index.json once, reading the manifest once', async (t) => {
  const store = await tempStore(t);
  const archive = ociArchive({ layers: [await tarBuffer([{ name: 'a', data: 'a' }])] });
  const manifest = archive.entries.find((e) => e.name === blobName(archive.manifestDigest))!.data as Buffer;
  const tags = Array.from({ length: 60 }, (_, i) => `web:${i}`);
  const index = { schemaVersion: 2, manifests: tags.map((tag) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: archive.manifestDigest, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': tag } })) };
  const path = await archiveFile(t, archive.entries.map((e) => (e.name === 'index.json' ? { ...e, data: JSON.stringify(index) } : e)));

  let indexWrites = 0;
  let blobReads = 0;
  const writeLayoutIndex = store.writeLayoutIndex.bind(store);
  store.writeLayoutIndex = () => {
    indexWrites++;
    return writeLayoutIndex();
  };
  const read = store.blobs.read.bind(store.blobs);
  store.blobs.read = (digest) => {
    blobReads++;
    return read(digest);
  };

  const result = await importImage(store, path);
  assert.equal(result.tags.length, 60);
  assert.equal(indexWrites, 1, 'one index.json write for all the tags');
  assert.equal(blobReads, 1, 'the manifest read once for the index');
  assert.deepEqual((await indexRefs(store)).sort(), [...tags].sort());
});

test('tagMany: every tag or none; an unknown image is not found', async (t) => {
  const store = await tempStore(t);
  const image = await makeImage(store, { name: 'web', tag: '1', files: { a: 'a' } });
  await store.tagMany(['web:2', 'api:1', 'docker.io/library/web:3'], image.digest);
  assert.deepEqual(store.tagsOfDigest(image.digest), ['api:1', 'web:1', 'web:2', 'web:3']);
  assert.deepEqual((await indexRefs(store)).sort(), ['api:1', 'web:1', 'web:2', 'web:3']);

  await assert.rejects(store.tagMany(['web:4', 'Bad Name:1'], image.digest), /invalid tag 'Bad Name:1'/);
  await assert.rejects(store.tagMany(['web:5'], sha256('no such image')), (error: unknown) => error instanceof ImageError && error.notFound);
  assert.deepEqual(store.tagsOfDigest(image.digest), ['api:1', 'web:1', 'web:2', 'web:3'], 'nothing tagged by a refused call');
});

test('an import never moves a tag off another image, unless forced', async (t) => {
  const store = await tempStore(t);
  const baked = await makeImage(store, { name: 'web', tag: '1', files: { 'app.txt': 'baked' } });
  const archive = ociArchive({ layers: [await tarBuffer([{ name: 'app.txt', data: 'imported' }])], name: 'web:1' });
  const path = await archiveFile(t, archive.entries);

  await assert.rejects(importImage(store, path), (error: unknown) => {
    assert.ok(error instanceof ImageError);
    assert.equal(error.exitCode, 2);
    assert.match(error.message, new RegExp(`refusing to move tag 'web:1' from ${baked.digest} to ${archive.manifestDigest}: import with --force to move it`));
    return true;
  });
  assert.equal(store.resolve('web:1'), baked.digest);
  assert.deepEqual(store.listImages().map((i) => i.digest), [baked.digest], 'nothing imported');

  // Several tags: each is named.
  await store.tag('web', 'latest', baked.digest);
  await assert.rejects(importImage(store, path, { tag: 'web:latest' }), /refusing to move tag 'web:latest' from sha256:[a-f0-9]{64} to sha256:[a-f0-9]{64}/);
  const both = ociArchive({ layers: [await tarBuffer([{ name: 'app.txt', data: 'imported' }])], name: 'web:latest' });
  const index = JSON.parse(String(both.entries.find((e) => e.name === 'index.json')!.data));
  index.manifests.push({ ...index.manifests[0], annotations: { 'org.opencontainers.image.ref.name': 'web:1' } });
  const twoTags = await archiveFile(t, both.entries.map((e) => (e.name === 'index.json' ? { ...e, data: JSON.stringify(index) } : e)));
  await assert.rejects(importImage(store, twoTags), /refusing to move tags 'web:latest' from sha256:[a-f0-9]{64}, 'web:1' from sha256:[a-f0-9]{64} to sha256:[a-f0-9]{64}: import with --force to move them/);

  const forced = await importImage(store, path, { force: true });
  assert.equal(forced.digest, archive.manifestDigest);
  assert.equal(store.resolve('web:1'), archive.manifestDigest);
  // The same image again moves nothing: no force needed.
  assert.equal((await importImage(store, path)).digest, archive.manifestDigest);
});

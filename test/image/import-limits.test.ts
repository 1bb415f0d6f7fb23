import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { importImage } from '../../src/image/import.js';
import { DEFAULT_IMPORT_LIMITS, importLimits } from '../../src/image/import-limits.js';
import type { ImportSource } from '../../src/image/import-source.js';
import { readOciLayout } from '../../src/image/read-oci-layout.js';
import { Staging } from '../../src/image/staging.js';
import { stageTarSource } from '../../src/image/tar-source.js';
import { digestHex, sha256 } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/types.js';
import { blobName, ociArchive, type BuiltArchive } from '../fixtures/archives.js';
import { archiveFile, assertRefused } from '../fixtures/assert-refused.js';
import { tarBuffer, type TarEntry } from '../fixtures/tar.js';
import { tempDir, tempStore } from '../fixtures/temp-store.js';

// Every limit is an option of importImage with a generous default; the tests set tiny ones, so
// a bomb is a few kilobytes here, and is refused the same way as one of gigabytes.

const MiB = 1024 * 1024;

async function smallLayer(): Promise<Buffer> {
  return tarBuffer([{ name: 'etc/hostname', data: 'imago\n' }]);
}

/** The archive with `entries` index.json entries, all naming one nested index whose children are `children`. */
function withNestedIndex(archive: BuiltArchive, entries: number, children: object[]): { entries: TarEntry[]; nestedName: string } {
  const nested = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.index, manifests: children }));
  const descriptor = { mediaType: MediaType.index, digest: sha256(nested), size: nested.length };
  const index = { schemaVersion: 2, manifests: Array.from({ length: entries }, (_, i) => ({ ...descriptor, annotations: { 'org.opencontainers.image.ref.name': `web:${i}` } })) };
  const nestedName = `blobs/sha256/${digestHex(sha256(nested))}`;
  return {
    entries: [...archive.entries.map((e) => (e.name === 'index.json' ? { ...e, data: JSON.stringify(index) } : e)), { name: nestedName, data: nested }],
    nestedName,
  };
}

function manifestDescriptor(archive: BuiltArchive): object {
  const bytes = archive.entries.find((e) => e.name === blobName(archive.manifestDigest))!.data as Buffer;
  return { mediaType: MediaType.manifest, digest: archive.manifestDigest, size: bytes.length, platform: { os: 'linux', architecture: 'amd64' } };
}

test('limits: the defaults, and overrides that are not positive integers are refused', async (t) => {
  assert.deepEqual(importLimits(), { ...DEFAULT_IMPORT_LIMITS });
  assert.equal(importLimits({ maxTags: 3 }).maxTags, 3);
  assert.throws(() => importLimits({ maxTags: 0 }), /limits\.maxTags: expected a positive integer, got 0/);
  assert.throws(() => importLimits({ maxEntries: 1.5 }), /limits\.maxEntries: expected a positive integer, got 1\.5/);
  assert.throws(() => importLimits({ maxEntriez: 1 } as object), /limits\.maxEntriez: unknown limit/);
  const store = await tempStore(t);
  await assertRefused(store, await archiveFile(t, ociArchive({ layers: [await smallLayer()] }).entries), /limits\.maxTags: expected a positive integer/, { limits: { maxTags: -1 } });
});

test('N index entries naming one nested index of N children are refused past maxManifests, not expanded N² times', async (t) => {
  const store = await tempStore(t);
  const archive = ociArchive({ layers: [await smallLayer()] });
  const children = Array.from({ length: 40 }, (_, i) => ({ mediaType: MediaType.manifest, digest: sha256(`child ${i}`), size: 10 }));
  const path = await archiveFile(t, withNestedIndex(archive, 40, children).entries);
  await assertRefused(store, path, /the archive's index offers more than 100 image manifests \(nested indexes included\): refusing it/, { limits: { maxManifests: 100 } });

  // The default applies without any option: 1,001 manifests straight in index.json.
  const many = { schemaVersion: 2, manifests: children.concat(children).flatMap((c) => Array(13).fill(c)).slice(0, 1001) };
  const flat = await archiveFile(t, archive.entries.map((e) => (e.name === 'index.json' ? { ...e, data: JSON.stringify(many) } : e)));
  await assertRefused(store, flat, /offers more than 1000 image manifests/);
});

test('a nested index named by many entries is read once', async (t) => {
  const store = await tempStore(t);
  const archive = ociArchive({ layers: [await smallLayer()] });
  const { entries, nestedName } = withNestedIndex(archive, 30, [manifestDescriptor(archive)]);
  const path = await archiveFile(t, entries);
  const staging = new Staging(store.blobs);
  t.after(() => staging.discard());
  const tar = await stageTarSource(path, staging, () => undefined, importLimits());
  let nestedReads = 0;
  const counting: ImportSource = {
    ...tar,
    get(name, expected) {
      if (name === nestedName) nestedReads++;
      return tar.get(name, expected);
    },
  };
  const image = await readOciLayout(counting, staging, { architecture: 'amd64', maxManifests: 1000 });
  assert.equal(image.manifest.digest, archive.manifestDigest);
  assert.equal(image.names.refNames.length, 30);
  assert.equal(nestedReads, 1);
});

test('an archive giving its image more than maxTags tags is refused', async (t) => {
  const store = await tempStore(t);
  const archive = ociArchive({ layers: [await smallLayer()] });
  const descriptor = manifestDescriptor(archive);
  const index = { schemaVersion: 2, manifests: [1, 2, 3, 4, 5].map((i) => ({ ...descriptor, annotations: { 'org.opencontainers.image.ref.name': `web:${i}` } })) };
  const path = await archiveFile(t, archive.entries.map((e) => (e.name === 'index.json' ? { ...e, data: JSON.stringify(index) } : e)));
  await assertRefused(store, path, /the archive gives its image 5 tags, more than the 3 one import applies: choose one with --tag/, { limits: { maxTags: 3 } });
  assert.deepEqual((await importImage(store, path, { limits: { maxTags: 5 } })).tags.length, 5);
});

test('a tar stages only the names an import can read: junk is drained, never written', async (t) => {
  const store = await tempStore(t);
  const archive = ociArchive({ layers: [await smallLayer()], name: 'web:1' });
  const junk: TarEntry[] = Array.from({ length: 40 }, (_, i) => ({ name: `junk/${i}.bin`, data: Buffer.alloc(4096, i) }));
  const path = await archiveFile(t, [...archive.entries, ...junk, { name: 'README.md', data: 'hello' }, { name: 'alias.bin', type: 'symlink', linkname: 'junk/1.bin' }]);
  const staging = new Staging(store.blobs);
  t.after(() => staging.discard());
  const source = await stageTarSource(path, staging, () => undefined, importLimits());
  const staged = await readdir(join(store.blobs.root, 'tmp'));
  assert.equal(staged.length, 5, `oci-layout, index.json and 3 blobs staged, got ${staged.length}`);
  assert.equal(await source.has('junk/1.bin'), true);
  await assert.rejects(source.get('junk/1.bin'), /refusing 'junk\/1\.bin' in '.*': imago reads only index\.json, oci-layout, manifest\.json, blobs\/sha256\/<hex>, <name>\.json and <id>\/layer\.tar from an archive/);
  await assert.rejects(source.get('alias.bin'), /not 'junk\/1\.bin'/);
  await staging.discard();

  const imported = await importImage(store, path);
  assert.equal(imported.digest, archive.manifestDigest);
});

test('a tar with more than maxEntries entries, or more than maxStagedBytes to stage, is refused', async (t) => {
  const store = await tempStore(t);
  const archive = ociArchive({ layers: [await tarBuffer([{ name: 'big', data: Buffer.alloc(8192, 1) }])], name: 'web:1' });
  const junk: TarEntry[] = Array.from({ length: 20 }, (_, i) => ({ name: `junk/${i}`, data: 'x' }));
  await assertRefused(store, await archiveFile(t, [...archive.entries, ...junk]), /'.*' has more than 10 entries: refusing it/, { limits: { maxEntries: 10 } });
  await assertRefused(store, await archiveFile(t, archive.entries), /'.*' holds more than 4096 bytes to read \(at 'blobs\/sha256\/[a-f0-9]{64}'\): refusing it/, {
    limits: { maxStagedBytes: 4096 },
  });
});

test('a gzip archive that inflates past maxGzipRatio times its size (and the floor) is refused', async (t) => {
  const store = await tempStore(t);
  const archive = ociArchive({ layers: [await smallLayer()], name: 'web:1' });
  const bytes = await tarBuffer([...archive.entries, { name: 'junk/zeros', data: Buffer.alloc(4 * MiB) }]);
  const path = join(await tempDir(t), 'bomb.tar.gz');
  await writeFile(path, gzipSync(bytes));
  await assertRefused(store, path, /'.*bomb\.tar\.gz' inflates to more than 50 times its \d+ bytes: refusing it as a likely gzip bomb/, {
    limits: { maxGzipRatio: 50, gzipRatioFloorBytes: MiB },
  });
  // Under the floor, the ratio is not held against it.
  assert.equal((await importImage(store, path, { limits: { maxGzipRatio: 50, gzipRatioFloorBytes: 8 * MiB } })).digest, archive.manifestDigest);
});

test('a layer larger than maxLayerBytes uncompressed, or a gzip layer inflating like a bomb, is refused', async (t) => {
  const store = await tempStore(t);
  const big = await tarBuffer([{ name: 'zeros', data: Buffer.alloc(4 * MiB) }]);
  const plain = ociArchive({ layers: [big], name: 'web:1' });
  await assertRefused(store, await archiveFile(t, plain.entries), /layer sha256:[a-f0-9]{64} holds more than 1048576 bytes uncompressed: refusing it/, { limits: { maxLayerBytes: MiB } });

  const gzipped = ociArchive({ layers: [big], gzip: true, name: 'web:1' });
  await assertRefused(store, await archiveFile(t, gzipped.entries), /layer sha256:[a-f0-9]{64} inflates to more than 50 times its \d+ bytes: refusing it as a likely gzip bomb/, {
    limits: { maxGzipRatio: 50, gzipRatioFloorBytes: MiB },
  });
  assert.equal((await importImage(store, await archiveFile(t, gzipped.entries))).digest, gzipped.manifestDigest, 'the defaults take it');
});

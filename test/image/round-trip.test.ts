import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { ImageError } from '../../src/errors.js';
import { exportImage, type ExportFormat } from '../../src/image/export.js';
import { importImage } from '../../src/image/import.js';
import { unpackImage } from '../../src/image/unpack-image.js';
import { digestHex } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/types.js';
import { blobName, dockerArchive, ociArchive } from '../fixtures/archives.js';
import { makeImage } from '../fixtures/make-image.js';
import { readTar, tarBuffer, writeEntriesToDir, writeTar, type TarEntry } from '../fixtures/tar.js';
import { tempDir, tempStore } from '../fixtures/temp-store.js';

const FILES = { 'app/hello.txt': 'hello from imago\n', 'usr/bin/app': '#!/bin/sh\necho app\n' };

for (const format of ['oci', 'oci-dir', 'docker'] as ExportFormat[]) {
  test(`export as ${format}, import into a fresh store: same digest, same tag, same files`, async (t) => {
    const source = await tempStore(t);
    const image = await makeImage(source, { name: 'web', tag: '1', files: FILES, symlinks: { 'app/link': 'hello.txt' } });
    const out = join(await tempDir(t), format === 'oci-dir' ? 'web-layout' : 'web.tar');
    const exported = await exportImage(source, 'web:1', out, { format });
    assert.equal(exported.digest, image.digest);
    assert.deepEqual(exported.tags, ['web:1']);

    const target = await tempStore(t);
    const steps: string[] = [];
    const imported = await importImage(target, out, { onProgress: (event) => steps.push(event.step) });
    assert.equal(imported.digest, image.digest);
    assert.deepEqual(imported.tags, ['web:1']);
    assert.deepEqual(imported.warnings, []);
    assert.deepEqual(steps, ['read', 'verify-layer', 'store']);
    assert.equal(target.resolve('web:1'), image.digest);
    assert.deepEqual(await target.blobs.read(image.digest), await source.blobs.read(image.digest));

    const root = join(await tempDir(t), 'rootfs');
    await unpackImage(target, imported.digest, root);
    assert.equal(await readFile(join(root, 'app/hello.txt'), 'utf8'), FILES['app/hello.txt']);
    assert.equal(await readFile(join(root, 'app/link'), 'utf8'), FILES['app/hello.txt']);
  });
}

test('a docker export holds manifest.json and an annotated OCI index, with provenance', async (t) => {
  const store = await tempStore(t);
  const provenance = { 'org.opencontainers.image.revision': 'abc123', 'org.opencontainers.image.source': 'https://example.com/web', steps: 3 };
  const image = await makeImage(store, { name: 'team/web', tag: '2.0', files: FILES, provenance });
  const out = join(await tempDir(t), 'web.tar');
  await exportImage(store, 'team/web:2.0', out, { format: 'docker' });

  const entries = new Map((await readTar(out)).map((e) => [e.name, e]));
  const manifestJson = JSON.parse(entries.get('manifest.json')!.data.toString());
  assert.deepEqual(manifestJson, [
    { Config: blobName(image.configDigest), RepoTags: ['team/web:2.0'], Layers: image.layers.map((l) => blobName(l.digest)) },
  ]);
  const index = JSON.parse(entries.get('index.json')!.data.toString());
  assert.equal(index.manifests.length, 1);
  assert.equal(index.manifests[0].digest, image.digest);
  assert.equal(index.manifests[0].mediaType, MediaType.manifest);
  assert.deepEqual(index.manifests[0].annotations, {
    'io.containerd.image.name': 'docker.io/team/web:2.0',
    'org.opencontainers.image.ref.name': 'team/web:2.0',
  });
  assert.deepEqual(index.annotations, { 'org.opencontainers.image.revision': 'abc123', 'org.opencontainers.image.source': 'https://example.com/web' });
  assert.ok(entries.has('oci-layout'));
  for (const digest of [image.digest, image.configDigest, ...image.layers.map((l) => l.digest)]) assert.ok(entries.has(blobName(digest)), digest);

  // The provenance comes back with the image.
  const again = await tempStore(t);
  const { digest } = await importImage(again, out);
  assert.equal(again.getImage(digest)?.provenance?.['org.opencontainers.image.revision'], 'abc123');
});

test('an image named by digest is exported with all its tags', async (t) => {
  const store = await tempStore(t);
  const image = await makeImage(store, { name: 'web', tag: '1', files: FILES });
  await store.tag('web', 'latest', image.digest);
  const out = join(await tempDir(t), 'layout');
  const result = await exportImage(store, image.digest, out, { format: 'oci-dir' });
  assert.deepEqual(result.tags, ['web:1', 'web:latest']);
  const target = await tempStore(t);
  const imported = await importImage(target, out);
  assert.deepEqual(imported.tags.sort(), ['web:1', 'web:latest']);
});

test('a gzip-layer OCI layout imports as it is, as a tar and as a folder, and round-trips', async (t) => {
  const layer = await tarBuffer([
    { name: 'etc/', type: 'directory' },
    { name: 'etc/motd', data: 'gzip layer\n' },
  ]);
  const archive = ociArchive({ layers: [layer], gzip: true, name: 'gz:1' });
  const dir = await tempDir(t);
  await writeTar(join(dir, 'gz.tar'), archive.entries);
  await writeEntriesToDir(join(dir, 'gz-layout'), archive.entries);

  for (const path of [join(dir, 'gz.tar'), join(dir, 'gz-layout')]) {
    const store = await tempStore(t);
    const result = await importImage(store, path);
    assert.equal(result.digest, archive.manifestDigest);
    assert.deepEqual(result.tags, ['gz:1']);
    const manifest = await store.manifest(result.digest);
    assert.equal(manifest.layers[0]!.mediaType, MediaType.layerGzip);
    assert.equal(manifest.layers[0]!.digest, archive.layerDigests[0]);
    assert.ok(await store.blobs.has(archive.layerDigests[0]!));

    const root = join(await tempDir(t), 'rootfs');
    await unpackImage(store, result.digest, root);
    assert.equal(await readFile(join(root, 'etc/motd'), 'utf8'), 'gzip layer\n');

    const out = join(await tempDir(t), 'again.tar');
    await exportImage(store, 'gz:1', out, { format: 'oci' });
    const fresh = await tempStore(t);
    assert.equal((await importImage(fresh, out)).digest, archive.manifestDigest);
  }
});

test('a legacy docker save archive is converted to an OCI manifest; repeated layers may be symlinks', async (t) => {
  const base = await tarBuffer([{ name: 'bin/', type: 'directory' }, { name: 'bin/tool', data: 'tool', mode: 0o755 }]);
  const empty = await tarBuffer([]);
  const archive = dockerArchive({ layers: [base, empty, empty], name: 'legacy:3', linkRepeats: true });
  assert.ok(archive.entries.some((e) => e.type === 'symlink'), 'the archive links the repeated layer');
  const path = join(await tempDir(t), 'legacy.tar');
  await writeTar(path, archive.entries);

  const store = await tempStore(t);
  const result = await importImage(store, path);
  assert.equal(result.digest, archive.manifestDigest);
  assert.deepEqual(result.tags, ['legacy:3']);
  const manifest = await store.manifest(result.digest);
  assert.equal(manifest.mediaType, MediaType.manifest);
  assert.equal(manifest.config.digest, archive.configDigest);
  assert.deepEqual(manifest.layers.map((l) => l.mediaType), [MediaType.layer, MediaType.layer, MediaType.layer]);

  // gzip layers are sniffed and kept compressed.
  const gz = dockerArchive({ layers: [base], gzip: true, name: 'legacy:gz' });
  await writeTar(path, gz.entries);
  const gzResult = await importImage(store, path);
  assert.equal(gzResult.digest, gz.manifestDigest);
  assert.equal((await store.manifest(gzResult.digest)).layers[0]!.mediaType, MediaType.layerGzip);
});

test('tags: a tag-only ref name needs a name; --tag overrides; --tag with a bare name takes the archive tag', async (t) => {
  const layer = await tarBuffer([{ name: 'a', data: 'a' }]);
  const archive = ociArchive({ layers: [layer], name: '1.0' });
  const path = join(await tempDir(t), 'tagless.tar');
  await writeTar(path, archive.entries);

  const store = await tempStore(t);
  await assert.rejects(importImage(store, path), (error: unknown) => {
    assert.ok(error instanceof ImageError);
    assert.match(error.message, /only by tag \('1\.0'\): give a name/);
    assert.equal(error.exitCode, 2);
    return true;
  });
  assert.deepEqual(store.listImages(), []);

  assert.deepEqual((await importImage(store, path, { tag: 'web' })).tags, ['web:1.0']);
  assert.deepEqual((await importImage(store, path, { tag: 'other:2' })).tags, ['other:2']);
  assert.equal(store.resolve('web:1.0'), archive.manifestDigest);
  assert.equal(store.resolve('other:2'), archive.manifestDigest);

  const untagged = ociArchive({ layers: [layer] });
  await writeTar(path, untagged.entries);
  const result = await importImage(store, path);
  assert.deepEqual(result.tags, []);
  assert.match(result.warnings.join('\n'), /no name: imported untagged/);
});

test('a multi-platform index gives the host (or amd64) image; an attestation is left out', async (t) => {
  const dir = await tempDir(t);
  const amd = ociArchive({ layers: [await tarBuffer([{ name: 'arch', data: 'amd64' }])] });
  const arm = ociArchive({ layers: [await tarBuffer([{ name: 'arch', data: 'riscv' }])] });
  const blobsOf = (a: typeof amd) => a.entries.filter((e) => e.name.startsWith('blobs/sha256/'));
  const descriptor = async (a: typeof amd, platform: object) => {
    const bytes = blobsOf(a).find((e) => e.name === blobName(a.manifestDigest))!.data as Buffer;
    return { mediaType: MediaType.manifest, digest: a.manifestDigest, size: bytes.length, platform };
  };
  const nested = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.index,
      manifests: [
        await descriptor(arm, { architecture: 'riscv64', os: 'linux' }),
        await descriptor(amd, { architecture: 'amd64', os: 'linux' }),
        await descriptor(arm, { architecture: 'unknown', os: 'unknown' }),
      ],
    }),
  );
  const { sha256 } = await import('../../src/oci/digest.js');
  const index = {
    schemaVersion: 2,
    manifests: [{ mediaType: MediaType.index, digest: sha256(nested), size: nested.length, annotations: { 'org.opencontainers.image.ref.name': 'multi:1' } }],
  };
  const entries: TarEntry[] = [
    { name: 'oci-layout', data: JSON.stringify({ imageLayoutVersion: '1.0.0' }) },
    { name: 'index.json', data: JSON.stringify(index) },
    { name: `blobs/sha256/${digestHex(sha256(nested))}`, data: nested },
    ...blobsOf(amd),
    ...blobsOf(arm).filter((e) => !blobsOf(amd).some((x) => x.name === e.name)),
  ];
  await writeTar(join(dir, 'multi.tar'), entries);
  const store = await tempStore(t);
  const result = await importImage(store, join(dir, 'multi.tar'));
  assert.equal(result.digest, process.arch === 'riscv64' ? arm.manifestDigest : amd.manifestDigest);
  assert.deepEqual(result.tags, ['multi:1']);
  assert.match(result.warnings.join('\n'), /picked linux\//);
});

test('exports fail whole: no half file, no temp file; bad references and formats are refused', async (t) => {
  const store = await tempStore(t);
  const image = await makeImage(store, { name: 'web', tag: '1', files: FILES });
  const dir = await tempDir(t);

  await store.blobs.delete(image.layers[0]!.digest);
  for (const format of ['oci', 'oci-dir', 'docker'] as ExportFormat[]) {
    await assert.rejects(exportImage(store, 'web:1', join(dir, `out-${format}`), { format }), /failed to export image 'web:1' to .*: blob sha256:[a-f0-9]+ is missing from the store/);
  }
  assert.deepEqual(await readdir(dir), []);

  await assert.rejects(exportImage(store, 'nope:1', join(dir, 'x.tar'), { format: 'oci' }), (error: unknown) => {
    assert.ok(error instanceof ImageError && error.notFound);
    return true;
  });
  await assert.rejects(exportImage(store, 'web:1', join(dir, 'x.tar'), { format: 'zip' as ExportFormat }), /format: expected one of 'oci', 'oci-dir', 'docker', got 'zip'/);

  const other = await makeImage(store, { name: 'ok', tag: '1', files: FILES });
  await writeFile(join(dir, 'keep'), 'x');
  await assert.rejects(exportImage(store, other.digest, dir, { format: 'oci-dir' }), /already exists and is not an empty folder/);
  assert.deepEqual(await readdir(dir), ['keep']);
});

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { test } from 'node:test';
import { importImage } from '../../src/image/import.js';
import { unpackImage } from '../../src/image/unpack-image.js';
import { sha256 } from '../../src/oci/digest.js';
import { blobName, dockerArchive, ociArchive, type BuiltArchive } from '../fixtures/archives.js';
import { archiveFile, assertRefused } from '../fixtures/assert-refused.js';
import { addImageOf, putLayer } from '../fixtures/make-image.js';
import { tarBuffer, type TarEntry } from '../fixtures/tar.js';
import { tempDir, tempStore } from '../fixtures/temp-store.js';

// Every hostile or broken archive is refused whole: an ImageError (exit 2) that says what was
// wrong, no image, no tag, no blob and no temp file left in the store, nothing written outside.

async function goodLayer(): Promise<Buffer> {
  return tarBuffer([{ name: 'etc/', type: 'directory' }, { name: 'etc/hostname', data: 'imago\n' }]);
}

async function assertAbsent(path: string): Promise<void> {
  await assert.rejects(lstat(path), { code: 'ENOENT' }, `${path} must not exist`);
}

function withEntries(archive: BuiltArchive, ...extra: TarEntry[]): TarEntry[] {
  return [...archive.entries, ...extra];
}

test('an entry named ../evil refuses the whole archive; nothing is written beside it', async (t) => {
  const store = await tempStore(t);
  const path = await archiveFile(t, withEntries(ociArchive({ layers: [await goodLayer()], name: 'web:1' }), { name: '../evil', data: 'evil' }));
  await assertRefused(store, path, /refusing archive entry '\.\.\/evil': '\.\.' segments are not allowed/);
  await assertAbsent(join(dirname(dirname(path)), 'evil'));
  await assertAbsent(join(dirname(path), 'evil'));
  await assertAbsent(join(store.blobs.root, 'evil'));
  await assertAbsent(join(store.home, 'evil'));
});

test('an absolute entry /etc/evil refuses the whole archive', async (t) => {
  const store = await tempStore(t);
  const target = `/etc/imago-evil-${randomBytes(4).toString('hex')}`;
  const path = await archiveFile(t, [{ name: target, data: 'evil' }, ...ociArchive({ layers: [await goodLayer()], name: 'web:1' }).entries]);
  await assertRefused(store, path, /absolute paths are not allowed/);
  await assertAbsent(target);
});

test('a symlink entry pointing outside, and an entry written through it, are refused', async (t) => {
  const store = await tempStore(t);
  const outside = join(tmpdir(), `imago-outside-${randomBytes(4).toString('hex')}`);
  await mkdir(outside);
  t.after(() => import('node:fs/promises').then((fs) => fs.rm(outside, { recursive: true, force: true })));
  const archive = ociArchive({ layers: [await goodLayer()], name: 'web:1' });

  const through = await archiveFile(t, withEntries(archive, { name: 'escape', type: 'symlink', linkname: outside }, { name: 'escape/pwned', data: 'pwned' }));
  await assertRefused(store, through, /refusing archive entry 'escape': a symlink to '.*' points outside the archive/);
  await assertAbsent(join(outside, 'pwned'));

  const relative = await archiveFile(t, withEntries(archive, { name: 'up', type: 'symlink', linkname: '../../..' }, { name: 'up/pwned', data: 'x' }));
  await assertRefused(store, relative, /points outside the archive/);

  // Even an inside link may not be a folder to write through.
  const inside = await archiveFile(t, withEntries(archive, { name: 'alias', type: 'symlink', linkname: 'blobs' }, { name: 'alias/x', data: 'x' }));
  await assertRefused(store, inside, /refusing archive entry 'alias\/x': it lies under the link 'alias'/);

  // A blob that is a link to a host file.
  const [manifestEntry, ...rest] = archive.entries.filter((e) => e.name === blobName(archive.manifestDigest));
  assert.ok(manifestEntry && rest.length === 0);
  const linked = await archiveFile(t, [
    ...archive.entries.filter((e) => e !== manifestEntry),
    { name: manifestEntry.name, type: 'symlink', linkname: '/etc/passwd' },
  ]);
  await assertRefused(store, linked, /a symlink to '\/etc\/passwd' points outside the archive/);
});

test('a folder layout with a symlinked blob is refused', async (t) => {
  const store = await tempStore(t);
  const archive = ociArchive({ layers: [await goodLayer()], name: 'web:1' });
  const dir = join(await tempDir(t), 'layout');
  for (const entry of archive.entries) {
    if (entry.type === 'directory') continue;
    await mkdir(dirname(join(dir, entry.name)), { recursive: true });
    if (entry.name === blobName(archive.layerDigests[0]!)) {
      await writeFile(join(dir, 'real-layer'), entry.data!);
      await symlink('../../real-layer', join(dir, entry.name));
    } else {
      await writeFile(join(dir, entry.name), entry.data!);
    }
  }
  await assertRefused(store, dir, /refusing 'blobs\/sha256\/[a-f0-9]{64}' in '.*': it is a symlink/);
});

test('layers naming ../../x, /etc/x or a hard link to ../x are refused at import', async (t) => {
  const store = await tempStore(t);
  const outside = `/etc/imago-layer-evil-${randomBytes(4).toString('hex')}`;
  const layers: Array<[TarEntry[], RegExp]> = [
    [[{ name: '../../x', data: 'x' }], /layer sha256:[a-f0-9]{64}: refusing archive entry '\.\.\/\.\.\/x': '\.\.' segments are not allowed/],
    [[{ name: 'etc/', type: 'directory' }, { name: 'etc/../../x', data: 'x' }], /refusing archive entry 'etc\/\.\.\/\.\.\/x'/],
    [[{ name: outside, data: 'x' }], /layer sha256:[a-f0-9]{64}: refusing archive entry '\/etc\/imago-layer-evil-[a-f0-9]+': absolute paths are not allowed/],
    [[{ name: 'a', data: 'a' }, { name: 'b', type: 'link', linkname: '../../etc/passwd' }], /refusing hard link 'b' to '\.\.\/\.\.\/etc\/passwd': the target must be a path inside the image/],
    [[{ name: 'b', type: 'link', linkname: '/etc/passwd' }], /refusing hard link 'b' to '\/etc\/passwd'/],
  ];
  for (const [entries, pattern] of layers) {
    const path = await archiveFile(t, ociArchive({ layers: [await goodLayer(), await tarBuffer(entries)], name: 'web:1' }).entries);
    await assertRefused(store, path, pattern);
    // The same layer in a docker archive is refused the same way.
    const docker = await archiveFile(t, dockerArchive({ layers: [await tarBuffer(entries)], name: 'web:1' }).entries);
    await assertRefused(store, docker, pattern);
  }
  await assertAbsent(outside);
  await assertAbsent(join(dirname(store.home), 'x'));
});

test('a blob whose bytes do not match its digest is refused', async (t) => {
  const store = await tempStore(t);
  const archive = ociArchive({ layers: [await goodLayer()], name: 'web:1' });
  const layerName = blobName(archive.layerDigests[0]!);
  const swapped = archive.entries.map((e) => (e.name === layerName ? { ...e, data: Buffer.concat([e.data as Buffer, Buffer.alloc(512)]) } : e));
  // What was found is described by its size only: nothing derived from content that failed a check is echoed.
  await assertRefused(store, await archiveFile(t, swapped), /layer sha256:[a-f0-9]{64} is corrupt: expected \d+ bytes hashing to sha256:[a-f0-9]{64}, got \d+ bytes$/);
  const flipped = archive.entries.map((e) => (e.name === layerName ? { ...e, data: Buffer.from(e.data as Buffer).fill(7, 0, 1) } : e));
  await assertRefused(store, await archiveFile(t, flipped), /layer sha256:[a-f0-9]{64} is corrupt: expected (\d+) bytes hashing to sha256:[a-f0-9]{64}, got \1 bytes that do not$/);

  const configName = blobName(archive.configDigest);
  const badConfig = archive.entries.map((e) => (e.name === configName ? { ...e, data: '{"rootfs":{"type":"layers","diff_ids":[]}}' } : e));
  await assertRefused(store, await archiveFile(t, badConfig), /config sha256:[a-f0-9]{64} is corrupt/);

  const missing = archive.entries.filter((e) => e.name !== layerName);
  await assertRefused(store, await archiveFile(t, missing), /'blobs\/sha256\/[a-f0-9]{64}' is missing from/);

  // docker's `<hex>.json` config names its digest too.
  const docker = dockerArchive({ layers: [await goodLayer()], name: 'web:1' });
  const lying = docker.entries.map((e) => (e.name.endsWith('.json') && e.name !== 'manifest.json' ? { ...e, data: Buffer.from(`${String(e.data)} `) } : e));
  await assertRefused(store, await archiveFile(t, lying), /config '[a-f0-9]{64}\.json' is corrupt: it does not hash to the digest its name gives$/);
});

test('a wrong diff_id, or a layer count that differs from the diff_ids, is refused', async (t) => {
  const store = await tempStore(t);
  const layer = await goodLayer();
  const wrong = ociArchive({ layers: [layer], name: 'web:1', diffIds: [sha256('something else')] });
  await assertRefused(store, await archiveFile(t, wrong.entries), new RegExp(`layer ${wrong.layerDigests[0]} does not match its diff_id: the image config expects ${sha256('something else')}$`));

  const gzWrong = ociArchive({ layers: [layer], gzip: true, name: 'web:1', diffIds: [wrong.layerDigests[0]!.replace(/.$/, '0') as `sha256:${string}`] });
  await assertRefused(store, await archiveFile(t, gzWrong.entries), /does not match its diff_id: the image config expects/);

  const count = ociArchive({ layers: [layer], name: 'web:1', diffIds: [sha256(layer), sha256(layer)] });
  await assertRefused(store, await archiveFile(t, count.entries), /the manifest lists 1 layer but the config's rootfs\.diff_ids lists 2 diff ids/);

  const dockerCount = dockerArchive({ layers: [layer, layer], name: 'web:1', diffIds: [sha256(layer)] });
  await assertRefused(store, await archiveFile(t, dockerCount.entries), /the manifest lists 2 layers but the config's rootfs\.diff_ids lists 1 diff id/);
});

test('a truncated archive, a flipped byte or a broken gzip stream is refused', async (t) => {
  const store = await tempStore(t);
  const dir = await tempDir(t);
  const layer = await tarBuffer([{ name: 'big', data: randomBytes(8192) }]);
  for (const archive of [ociArchive({ layers: [layer], name: 'web:1' }), dockerArchive({ layers: [layer], name: 'web:1' })]) {
    const bytes = await tarBuffer(archive.entries);

    await writeFile(join(dir, 'cut.tar'), bytes.subarray(0, Math.floor(bytes.length / 2)));
    await assertRefused(store, join(dir, 'cut.tar'), /is not a readable tar archive: Unexpected end of data|is missing from/);

    const flipped = Buffer.from(bytes);
    const at = flipped.indexOf(layer) + 4096;
    assert.ok(at > 4096);
    flipped[at] = flipped[at]! ^ 0xff;
    await writeFile(join(dir, 'flipped.tar'), flipped);
    // An OCI layer has a digest to miss; a docker archive's layer only its diff_id.
    await assertRefused(store, join(dir, 'flipped.tar'), /layer sha256:[a-f0-9]{64} (is corrupt|does not match its diff_id)/);
  }

  // A corrupt archive header: the tar itself does not parse.
  const bytes = await tarBuffer(ociArchive({ layers: [layer], name: 'web:1' }).entries);
  bytes[10] = bytes[10]! ^ 0xff;
  await writeFile(join(dir, 'header.tar'), bytes);
  await assertRefused(store, join(dir, 'header.tar'), /is not a readable tar archive: Invalid tar header/);

  // A gzip layer whose descriptor matches its bytes, but the bytes do not inflate.
  const broken = ociArchive({
    layers: [layer],
    gzip: true,
    name: 'web:1',
    rewriteBlob: (blob) => Buffer.concat([blob.subarray(0, 20), Buffer.alloc(64, 0xaa), blob.subarray(84)]),
  });
  await assertRefused(store, await archiveFile(t, broken.entries), /layer sha256:[a-f0-9]{64} is not a valid gzip stream/);
  const cutGzip = ociArchive({ layers: [layer], gzip: true, name: 'web:1', rewriteBlob: (blob) => blob.subarray(0, blob.length - 100) });
  await assertRefused(store, await archiveFile(t, cutGzip.entries), /layer sha256:[a-f0-9]{64} is not a valid gzip stream: unexpected end of file/);
  // An uncompressed layer that is not a tar.
  const notTar = ociArchive({ layers: [randomBytes(1024)], name: 'web:1' });
  await assertRefused(store, await archiveFile(t, notTar.entries), /layer sha256:[a-f0-9]{64} is not a valid tar archive/);

  // Not an archive at all.
  await writeFile(join(dir, 'noise.tar'), randomBytes(3000));
  await assertRefused(store, join(dir, 'noise.tar'), /is not a readable tar archive/);
});

test('bad JSON anywhere refuses the archive, naming the document', async (t) => {
  const store = await tempStore(t);
  const archive = ociArchive({ layers: [await goodLayer()], name: 'web:1' });
  const replace = (name: string, data: string) => archive.entries.map((e) => (e.name === name ? { ...e, data } : e));
  await assertRefused(store, await archiveFile(t, replace('index.json', '{"schemaVersion": 2, "manifests": [')), /index\.json is not valid JSON/);
  await assertRefused(store, await archiveFile(t, replace('index.json', '{"schemaVersion": 2, "manifests": [{"digest": "sha256:nope"}]}')), /index\.json is not valid: manifests\.0\.mediaType/);
  await assertRefused(store, await archiveFile(t, replace('oci-layout', 'nope')), /oci-layout is not valid JSON/);
  // JSON.parse's own message quotes the input: only the position is reported.
  for (const [data, at] of [['SECRET-do-not-echo', 0], ['{"schemaVersion": 2, "manifests": [SECRET]}', 35], ['{"a": "SECRET" x}', 15]] as const) {
    const error = await assertRefused(store, await archiveFile(t, replace('index.json', data)), new RegExp(`index\\.json is not valid JSON \\(at position ${at}\\)$`));
    assert.doesNotMatch(error.message, /SECRET/);
  }

  const docker = dockerArchive({ layers: [await goodLayer()], name: 'web:1' });
  const badManifest = docker.entries.map((e) => (e.name === 'manifest.json' ? { ...e, data: '[{"Config": 1}]' } : e));
  await assertRefused(store, await archiveFile(t, badManifest), /manifest\.json is not valid: 0\.Config/);
  const escape = docker.entries.map((e) => (e.name === 'manifest.json' ? { ...e, data: JSON.stringify([{ Config: '../../etc/passwd', RepoTags: ['web:1'], Layers: [] }]) } : e));
  await assertRefused(store, await archiveFile(t, escape), /refusing archive entry '\.\.\/\.\.\/etc\/passwd'/);
  await assertRefused(store, await archiveFile(t, [{ name: 'README', data: 'hello' }]), /neither index\.json nor manifest\.json/);
});

test('a device node in a layer is imported, then skipped with a warning when unpacked', async (t) => {
  const store = await tempStore(t);
  const layer = await tarBuffer([
    { name: 'dev/', type: 'directory' },
    { name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0 },
    { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 },
    { name: 'dev/fifo', type: 'fifo' },
    { name: 'etc/hostname', data: 'imago\n' },
  ]);
  const archive = ociArchive({ layers: [layer], name: 'dev:1' });
  const { digest } = await importImage(store, await archiveFile(t, archive.entries));
  assert.equal(digest, archive.manifestDigest);

  const root = join(await tempDir(t), 'rootfs');
  const warnings: string[] = [];
  await unpackImage(store, digest, root, { onWarning: (message) => warnings.push(message) });
  assert.deepEqual(warnings.sort(), [
    "skipped block-device 'dev/sda': device nodes and fifos are not unpacked",
    "skipped character-device 'dev/null': device nodes and fifos are not unpacked",
    "skipped fifo 'dev/fifo': device nodes and fifos are not unpacked",
  ]);
  assert.deepEqual(await readdir(join(root, 'dev')), []);
  assert.equal(await readFile(join(root, 'etc/hostname'), 'utf8'), 'imago\n');
});

test('unpacking never chmods a host folder through a symlink that replaced a folder', async (t) => {
  const store = await tempStore(t);
  const victim = await tempDir(t, 'imago-victim');
  await chmod(victim, 0o700);
  // `d` is a folder then a link to the victim; `p/<victim>` is a folder whose parent becomes a link.
  const layer = await tarBuffer([
    { name: 'd/', type: 'directory', mode: 0o777 },
    { name: 'p/', type: 'directory', mode: 0o755 },
    { name: `p/${basename(victim)}/`, type: 'directory', mode: 0o777 },
    { name: 'd', type: 'symlink', linkname: victim },
    { name: 'p', type: 'symlink', linkname: dirname(victim) },
  ]);
  const archive = ociArchive({ layers: [layer], name: 'swap:1' });
  const { digest } = await importImage(store, await archiveFile(t, archive.entries));
  const root = join(await tempDir(t), 'rootfs');
  await unpackImage(store, digest, root);
  assert.equal((await stat(victim)).mode & 0o7777, 0o700);
  assert.equal((await lstat(join(root, 'd'))).isSymbolicLink(), true);
});

test('unpacking a stored layer with a ../ entry fails cleanly, writing nothing outside', async (t) => {
  const store = await tempStore(t);
  const name = `imago-unpack-evil-${randomBytes(4).toString('hex')}`;
  const layer = await putLayer(store, await tarBuffer([{ name: 'ok', data: 'ok' }, { name: `../${name}`, data: 'evil' }]));
  const image = await addImageOf(store, { name: 'evil', tag: '1', layers: [layer] });
  const root = join(await tempDir(t), 'rootfs');
  await assert.rejects(unpackImage(store, image.digest, root), /refusing archive entry '\.\.\/imago-unpack-evil-[a-f0-9]+'/);
  await new Promise((resolve) => setTimeout(resolve, 50)); // an unhandled rejection would surface here
  await assertAbsent(join(dirname(root), name));
});

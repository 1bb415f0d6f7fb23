import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { link, mkdir, rename, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { openDirSource, type DirSourceHooks } from '../../src/image/dir-source.js';
import { MAX_JSON_BYTES } from '../../src/image/schemas.js';
import { Staging } from '../../src/image/staging.js';
import { blobName, ociArchive, type BuiltArchive } from '../fixtures/archives.js';
import { assertRefused } from '../fixtures/assert-refused.js';
import { tarBuffer, writeEntriesToDir } from '../fixtures/tar.js';
import { tempDir, tempStore } from '../fixtures/temp-store.js';

// A layout folder may change while it is read: each file is checked again through the handle
// that reads it. The swaps happen in `afterWalk`, between the walk and the open, where a racing
// writer would strike; and a file is sized before it is copied.

async function layout(t: TestContext): Promise<{ dir: string; archive: BuiltArchive }> {
  const archive = ociArchive({ layers: [await tarBuffer([{ name: 'etc/hostname', data: 'imago\n' }])], name: 'web:1' });
  const dir = join(await tempDir(t), 'layout');
  await writeEntriesToDir(dir, archive.entries);
  return { dir, archive };
}

/** A folder source over a real store's staging, counting the files it copies. */
async function source(t: TestContext, dir: string, hooks: DirSourceHooks = {}) {
  const store = await tempStore(t);
  const staging = new Staging(store.blobs);
  t.after(() => staging.discard());
  const staged: string[] = [];
  const stage = staging.stage.bind(staging);
  staging.stage = (body) => {
    staged.push('file');
    return stage(body);
  };
  return { source: openDirSource(dir, staging, hooks), staged, store };
}

/** A hook that runs `swap` once, when `name` is about to be opened. */
function onOpening(name: string, swap: () => Promise<void>): DirSourceHooks {
  return { afterWalk: async (opening) => (opening === name ? swap() : undefined) };
}

test('a parent folder swapped for a symlink after the walk: the file read is refused', async (t) => {
  const { dir, archive } = await layout(t);
  const name = blobName(archive.manifestDigest);
  const outside = join(await tempDir(t), 'outside');
  await mkdir(join(outside, 'sha256'), { recursive: true });
  await writeFile(join(outside, 'sha256', basename(name)), 'a secret outside the folder');
  const { source: src, staged } = await source(
    t,
    dir,
    onOpening(name, async () => {
      await rename(join(dir, 'blobs'), join(dir, 'blobs-moved'));
      await symlink(outside, join(dir, 'blobs'));
    }),
  );
  await assert.rejects(src.get(name), /refusing 'blobs\/sha256\/[a-f0-9]{64}' in '.*': it was replaced while it was read/);
  assert.equal(staged.length, 0, 'nothing copied');
});

test('the same file reached through a swapped parent (a hard link outside) is refused by its real path', async (t) => {
  const { dir, archive } = await layout(t);
  const name = blobName(archive.manifestDigest);
  const outside = join(await tempDir(t), 'outside');
  await mkdir(join(outside, 'sha256'), { recursive: true });
  await link(join(dir, name), join(outside, 'sha256', basename(name))); // same device and inode
  const { source: src } = await source(
    t,
    dir,
    onOpening(name, async () => {
      await rename(join(dir, 'blobs'), join(dir, 'blobs-moved'));
      await symlink(outside, join(dir, 'blobs'));
    }),
  );
  await assert.rejects(src.get(name), /refusing 'blobs\/sha256\/[a-f0-9]{64}' in '.*': it lies outside the folder/);
});

test('a FIFO swapped in after the walk is refused at once, never waited on', { timeout: 5000 }, async (t) => {
  const { dir } = await layout(t);
  const { source: src } = await source(
    t,
    dir,
    onOpening('index.json', async () => {
      await rm(join(dir, 'index.json'));
      await promisify(execFile)('mkfifo', [join(dir, 'index.json')]);
    }),
  );
  await assert.rejects(src.get('index.json'), /refusing 'index\.json' in '.*': not a regular file/);
});

test('a JSON document larger than an import reads is refused before it is copied (a sparse index.json)', async (t) => {
  const { dir } = await layout(t);
  await truncate(join(dir, 'index.json'), MAX_JSON_BYTES + 1);
  const { source: src, staged, store } = await source(t, dir);
  await assert.rejects(src.get('index.json', { maxBytes: MAX_JSON_BYTES }), new RegExp(`refusing 'index\\.json' in '.*': it is ${MAX_JSON_BYTES + 1} bytes, more than the ${MAX_JSON_BYTES}`));
  assert.equal(staged.length, 0, 'nothing copied');
  await assertRefused(store, dir, /refusing 'index\.json' in '.*': it is \d+ bytes, more than the \d+ an import reads into memory/);
});

test('a blob whose file size differs from its descriptor is refused before it is copied', async (t) => {
  const { dir, archive } = await layout(t);
  const name = blobName(archive.layerDigests[0]!);
  const size = (archive.entries.find((e) => e.name === name)!.data as Buffer).length;
  await truncate(join(dir, name), 64 * 1024 * 1024); // sparse: costs nothing to make, a lot to copy
  const { source: src, staged, store } = await source(t, dir);
  await assert.rejects(src.get(name, { size }), new RegExp(`it is ${64 * 1024 * 1024} bytes, but its descriptor says ${size}`));
  assert.equal(staged.length, 0, 'nothing copied');
  await assertRefused(store, dir, /refusing 'blobs\/sha256\/[a-f0-9]{64}' in '.*': it is 67108864 bytes, but its descriptor says \d+/);
});

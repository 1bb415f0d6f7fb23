import assert from 'node:assert/strict';
import { lstat, mkdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { withParents, writeLayer, type LayerEntry } from '../../src/oci/layer-writer.js';
import { applyLayer } from '../../src/oci/unpack.js';
import { ImageStore } from '../../src/store/image-store.js';
import { tempDir } from '../support/temp.js';

const segment = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,8}$/).filter((s) => !s.startsWith('.wh.'));
const pathArb = fc.array(segment, { minLength: 1, maxLength: 3 }).map((parts) => parts.join('/'));
const fileArb = fc.record({ path: pathArb, content: fc.string({ maxLength: 40 }), exec: fc.boolean() });

/** Keeps a set of files in which no file is also another file's folder. */
function consistent(files: Array<{ path: string; content: string; exec: boolean }>) {
  const byPath = new Map(files.map((f) => [f.path, f]));
  return [...byPath.values()].filter((f) => ![...byPath.keys()].some((other) => other.startsWith(`${f.path}/`)));
}

function toEntries(files: Array<{ path: string; content: string; exec: boolean }>): LayerEntry[] {
  return withParents(
    files.map((f) => ({
      type: 'file' as const,
      path: f.path,
      mode: f.exec ? 0o755 : 0o644,
      uid: 0,
      gid: 0,
      size: Buffer.byteLength(f.content),
      source: { data: Buffer.from(f.content) },
    })),
  );
}

describe('layers', () => {
  it('the same entries in any order give the same digest, and unpack to the same tree', async () => {
    const store = await ImageStore.open(await tempDir());
    let round = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fileArb, { maxLength: 12 }).map(consistent), fc.integer(), async (files, seed) => {
        const entries = toEntries(files);
        const shuffled = [...entries].sort((a, b) => ((a.path.length * 31 + seed) % 7) - ((b.path.length * 31 + seed) % 7));
        const one = await writeLayer(store.blobs, entries);
        const two = await writeLayer(store.blobs, shuffled);
        assert.equal(one.digest, two.digest);
        const root = join(store.home, `root-${round++}`);
        await mkdir(root);
        await applyLayer(root, store.blobs.stream(one.digest));
        for (const f of files) {
          assert.equal(await readFile(join(root, f.path), 'utf8'), f.content);
          assert.equal((await lstat(join(root, f.path))).mode & 0o777, f.exec ? 0o755 : 0o644);
        }
      }),
      { numRuns: 60 },
    );
    store.close();
  });

  it('applies whiteouts and keeps symlinks as symlinks', async () => {
    const store = await ImageStore.open(await tempDir());
    const lower = await writeLayer(
      store.blobs,
      withParents([
        { type: 'file', path: 'etc/a', mode: 0o644, uid: 0, gid: 0, size: 1, source: { data: Buffer.from('a') } },
        { type: 'file', path: 'etc/b', mode: 0o644, uid: 0, gid: 0, size: 1, source: { data: Buffer.from('b') } },
        { type: 'symlink', path: 'bin', target: 'usr/bin', uid: 0, gid: 0 },
        { type: 'symlink', path: 'etc/abs', target: '/etc/shadow', uid: 0, gid: 0 },
      ]),
    );
    const upper = await writeLayer(store.blobs, [{ type: 'whiteout', path: 'etc/a' }]);
    const root = await tempDir();
    await applyLayer(root, store.blobs.stream(lower.digest));
    await applyLayer(root, store.blobs.stream(upper.digest));
    await assert.rejects(lstat(join(root, 'etc/a')), { code: 'ENOENT' });
    assert.equal(await readFile(join(root, 'etc/b'), 'utf8'), 'b');
    assert.equal(await readlink(join(root, 'bin')), 'usr/bin');
    assert.equal(await readlink(join(root, 'etc/abs')), '/etc/shadow');
    store.close();
  });
});

import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import tar from 'tar-stream';
import { applyLayer } from '../../src/oci/unpack.js';
import { tempDir } from '../support/temp.js';

type Entry = { name: string; type?: 'file' | 'directory' | 'symlink'; linkname?: string; content?: string };

/** A tar layer with entries in exactly the order given (hostile layers choose their order). */
async function layer(entries: Entry[]): Promise<Readable> {
  const pack = tar.pack();
  for (const e of entries) {
    const content = Buffer.from(e.content ?? '');
    const isFile = !e.type || e.type === 'file';
    pack.entry({ name: e.name, type: e.type ?? 'file', linkname: e.linkname, size: isFile ? content.length : 0, mode: e.type === 'directory' ? 0o755 : 0o644 }, isFile ? content : Buffer.alloc(0));
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Readable.from([Buffer.concat(chunks)]);
}

describe('whiteouts', () => {
  it('an opaque whiteout under a symlink never empties a folder outside the root', async () => {
    const victim = await tempDir();
    await writeFile(join(victim, 'precious'), 'keep me');
    const root = await tempDir();
    await applyLayer(root, await layer([{ name: 'x', type: 'symlink', linkname: victim }]));
    await applyLayer(root, await layer([{ name: 'x/.wh..wh..opq' }]));
    assert.deepEqual(await readdir(victim), ['precious']);
  });

  it('a plain whiteout under a symlink never deletes outside the root', async () => {
    const victim = await tempDir();
    await writeFile(join(victim, 'precious'), 'keep me');
    const root = await tempDir();
    await applyLayer(root, await layer([{ name: 'x', type: 'symlink', linkname: victim }, { name: 'x/.wh.precious' }]));
    assert.equal(await readFile(join(victim, 'precious'), 'utf8'), 'keep me');
  });

  it('an opaque whiteout keeps what its own layer wrote and drops what lower layers had', async () => {
    const root = await tempDir();
    await applyLayer(root, await layer([{ name: 'd/', type: 'directory' }, { name: 'd/lower', content: 'old' }]));
    await applyLayer(root, await layer([{ name: 'd/', type: 'directory' }, { name: 'd/same-layer', content: 'a' }, { name: 'd/.wh..wh..opq' }, { name: 'd/z', content: 'z' }]));
    assert.deepEqual((await readdir(join(root, 'd'))).sort(), ['same-layer', 'z']);
  });

  it('a whiteout under a missing folder creates nothing', async () => {
    const root = await tempDir();
    await mkdir(join(root, 'keep'));
    await applyLayer(root, await layer([{ name: 'gone/deeper/.wh.x' }]));
    assert.deepEqual(await readdir(root), ['keep']);
  });
});

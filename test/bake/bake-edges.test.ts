import assert from 'node:assert/strict';
import { mkdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { bake } from '../../src/bake/baker.js';
import type { BakeEvent } from '../../src/bake/events.js';
import { BakeError } from '../../src/errors.js';
import { unpackImage } from '../../src/image/unpack-image.js';
import { writeLayer } from '../../src/oci/layer-writer.js';
import { sha256 } from '../../src/oci/digest.js';
import { ImageStore } from '../../src/store/image-store.js';
import { readLayer } from '../support/layers.js';
import { copy, imageSpec, run } from '../support/spec.js';
import { tempDir } from '../support/temp.js';

const busybox = { kind: 'host' as const, executables: ['busybox'] };

async function fresh(): Promise<ImageStore> {
  return ImageStore.open(await tempDir());
}

describe('bake edge cases', () => {
  it('a folder replaced by a symlink or a file makes an image that unpacks to what the step left', async () => {
    const store = await fresh();
    const ctx = await tempDir();
    const result = await bake({
      store,
      spec: imageSpec({
        context: ctx,
        from: busybox,
        steps: [run('mkdir /app /srv /etc2 && echo old > /app/config && echo keep > /srv/config && echo x > /etc2/a'), run('rm -rf /app && ln -s /srv /app && rm -rf /etc2 && echo file > /etc2')],
      }),
    });
    const layer = (await readLayer(store, result.layers[2]!.digest)).map((e) => e.name);
    assert.deepEqual(layer, ['app', 'etc2']);
    const root = await tempDir();
    await unpackImage(store, result.digest, root);
    assert.equal(await readFile(join(root, 'srv', 'config'), 'utf8'), 'keep\n');
    assert.equal(await readlink(join(root, 'app')), '/srv');
    assert.equal(await readFile(join(root, 'etc2'), 'utf8'), 'file\n');
    store.close();
  });

  it('does not depend on the caller\'s umask', async () => {
    const ctx = await tempDir();
    await mkdir(join(ctx, 'app'));
    await writeFile(join(ctx, 'app', 'a.js'), 'a');
    const spec = imageSpec({ context: ctx, from: busybox, workdir: '/work/dir', steps: [copy('app', '/srv/app'), run('touch /f && mkdir /d && touch /srv/app/new')] });
    const digests = [];
    for (const mask of [0o022, 0o077, 0o002]) {
      const previous = process.umask(mask);
      try {
        const store = await fresh();
        digests.push((await bake({ store, spec })).digest);
        store.close();
      } finally {
        process.umask(previous);
      }
    }
    assert.equal(new Set(digests).size, 1, digests.join(' '));
  });

  it('gives the same digest whether earlier run steps came from the cache or were just built', async () => {
    const ctx = await tempDir();
    const one = imageSpec({ context: ctx, from: busybox, steps: [run('echo x > /f && mkdir -p /d/e')] });
    const two = imageSpec({ context: ctx, from: busybox, steps: [...one.steps, run('stat -c %Y /f /d /d/e > /m && hostname > /h')] });
    const cold = await fresh();
    const coldResult = await bake({ store: cold, spec: two });
    const warm = await fresh();
    await bake({ store: warm, spec: one });
    const warmResult = await bake({ store: warm, spec: two });
    assert.deepEqual(
      warmResult.layers.map((l) => l.cached),
      [true, true, false],
    );
    assert.equal(warmResult.digest, coldResult.digest);
    const entries = await readLayer(cold, coldResult.layers[2]!.digest);
    assert.equal(entries.find((e) => e.name === 'm')?.content, '0\n0\n0\n');
    assert.equal(entries.find((e) => e.name === 'h')?.content, 'imago\n', 'the sandbox has its own hostname');
    cold.close();
    warm.close();
  });

  it('keeps owners a copy gave when a later run step works in the folder, and chown works', async () => {
    const ctx = await tempDir();
    await mkdir(join(ctx, 'app'));
    await writeFile(join(ctx, 'app', 'a.js'), 'a');
    const store = await fresh();
    const result = await bake({
      store,
      spec: imageSpec({ context: ctx, from: busybox, steps: [copy('app', '/app', { owner: { uid: 1000, gid: 1000 } }), run('touch /app/new && touch /x && chown 1234:5678 /x')] }),
    });
    const entries = await readLayer(store, result.layers[2]!.digest);
    const byName = new Map(entries.map((e) => [e.name, e]));
    assert.equal(byName.get('app/')?.uid, 1000);
    assert.equal(byName.get('app/new')?.uid, 0);
    assert.equal(byName.get('x')?.uid, 1234);
    assert.equal(byName.get('x')?.gid, 5678);
    store.close();
  });

  it('treats dest "/app/" and "/app" alike for a folder, and names a symlinked file src by its own name', async () => {
    const ctx = await tempDir();
    await mkdir(join(ctx, 'app', 'sub'), { recursive: true });
    await writeFile(join(ctx, 'app', 'sub', 'x.js'), 'x');
    await writeFile(join(ctx, 'app-v2.js'), 'v2');
    await symlink('app-v2.js', join(ctx, 'server.js'));
    const store = await fresh();
    const a = await bake({ store, spec: imageSpec({ context: ctx, steps: [copy('app', '/app')] }) });
    const b = await bake({ store, spec: imageSpec({ context: ctx, steps: [copy('app', '/app/')] }) });
    assert.equal(b.layers[0]!.digest, a.layers[0]!.digest);
    assert.deepEqual(
      (await readLayer(store, a.layers[0]!.digest)).map((e) => e.name),
      ['app/', 'app/sub/', 'app/sub/x.js'],
    );
    const c = await bake({ store, spec: imageSpec({ context: ctx, steps: [copy('server.js', '/srv/')] }) });
    const entries = await readLayer(store, c.layers[0]!.digest);
    assert.deepEqual(entries.map((e) => [e.name, e.content]), [['srv/server.js', 'v2']]);
    store.close();
  });

  it('a file replaced by a fifo leaves the image (with a warning), never keeping the old content', async () => {
    const store = await fresh();
    const events: BakeEvent[] = [];
    const result = await bake({
      store,
      spec: imageSpec({ context: await tempDir(), from: busybox, steps: [run('echo secret-token > /p'), run('rm /p && mkfifo /p')] }),
      onEvent: (e) => events.push(e),
    });
    assert.deepEqual(
      (await readLayer(store, result.layers[2]!.digest)).map((e) => e.name),
      ['.wh.p'],
    );
    assert.ok(events.some((e) => e.type === 'warning' && /left '\/p' out of the layer/.test(e.message)));
    const root = await tempDir();
    await unpackImage(store, result.digest, root);
    await assert.rejects(readFile(join(root, 'p')), { code: 'ENOENT' });
    store.close();
  });

  it('names the workdir key when the workdir cannot be a folder', async () => {
    const store = await fresh();
    const ctx = await tempDir();
    await writeFile(join(ctx, 'a.txt'), 'a file, not a folder');
    await assert.rejects(
      bake({ store, spec: imageSpec({ name: 'wd', context: ctx, from: busybox, workdir: '/a.txt/sub', steps: [copy('a.txt', '/a.txt'), run('true')] }) }),
      (e: BakeError) => e instanceof BakeError && /^images\.wd\.workdir: expected a folder \(or nothing\) at "\/a\.txt\/sub"/.test(e.message) && e.exitCode === 2,
    );
    store.close();
  });

  it('refuses to store a file whose content changed after it was hashed', async () => {
    const store = await fresh();
    const dir = await tempDir();
    await writeFile(join(dir, 'f'), 'now');
    await assert.rejects(
      writeLayer(store.blobs, [{ type: 'file', path: 'f', mode: 0o644, uid: 0, gid: 0, size: 3, source: { file: join(dir, 'f'), digest: sha256('was') } }]),
      /did it change while baking\?.*hashes to/,
    );
    await assert.rejects(
      writeLayer(store.blobs, [{ type: 'file', path: 'f', mode: 0o644, uid: 3_000_000, gid: 0, size: 3, source: { data: Buffer.from('abc') } }]),
      /owners above 2097151 do not fit a tar header/,
    );
    store.close();
  });
});

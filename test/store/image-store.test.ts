import assert from 'node:assert/strict';
import { readFile, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { bake } from '../../src/bake/baker.js';
import { ImageError } from '../../src/errors.js';
import { sha256 } from '../../src/oci/digest.js';
import { ImageStore } from '../../src/store/image-store.js';
import { createRelease } from '../../src/state/releases.js';
import { copy, imageSpec } from '../support/spec.js';
import { tempDir } from '../support/temp.js';

async function bakeOne(store: ImageStore, ctx: string, name: string, content: string) {
  await writeFile(join(ctx, `${name}.txt`), content);
  return bake({ store, spec: imageSpec({ name, context: ctx, steps: [copy(`${name}.txt`, `/${name}.txt`)] }) });
}

/** Makes every blob look old enough for gc. */
async function ageBlobs(store: ImageStore): Promise<void> {
  const dir = join(store.blobs.root, 'blobs', 'sha256');
  const old = new Date(Date.now() - 3600_000);
  for (const name of await readdir(dir)) await utimes(join(dir, name), old, old);
}

describe('blob store', () => {
  it('stores a blob once, under the digest of its bytes', async () => {
    const store = await ImageStore.open(await tempDir());
    const a = await store.blobs.putBuffer('hello');
    const b = await store.blobs.putBuffer('hello');
    assert.equal(a.digest, sha256('hello'));
    assert.equal(b.digest, a.digest);
    assert.equal(await readFile(store.blobs.path(a.digest), 'utf8'), 'hello');
    store.close();
  });

  it('refuses a stream that does not hash to the expected digest, and keeps nothing', async () => {
    const store = await ImageStore.open(await tempDir());
    const expected = sha256('the real bytes');
    await assert.rejects(store.blobs.putStream(Readable.from([Buffer.from('other bytes')]), { digest: expected }), ImageError);
    assert.equal(await store.blobs.has(expected), false);
    assert.deepEqual(await readdir(join(store.blobs.root, 'tmp')), [], 'no temp file left behind');
    store.close();
  });

  it('keeps nothing under a digest when the source fails mid-stream', async () => {
    const store = await ImageStore.open(await tempDir());
    async function* broken() {
      yield Buffer.from('partial');
      throw new Error('disk went away');
    }
    await assert.rejects(store.blobs.putStream(broken()), /disk went away/);
    assert.deepEqual(await store.blobs.list(), []);
    store.close();
  });
});

describe('image store', () => {
  it('resolves names, tags, digests and digest prefixes; unknown references are not-found errors', async () => {
    const store = await ImageStore.open(await tempDir());
    const ctx = await tempDir();
    const web = await bakeOne(store, ctx, 'web', 'one');
    assert.equal(store.resolve('web'), web.digest);
    assert.equal(store.resolve('web:latest'), web.digest);
    assert.equal(store.resolve(web.digest), web.digest);
    assert.equal(store.resolve(`web@${web.digest}`), web.digest);
    assert.equal(store.resolve(web.digest.slice(7, 19)), web.digest);
    assert.throws(() => store.resolve('nope:1'), (e: ImageError) => e.notFound && e.exitCode === 2);
    assert.throws(() => store.resolve('Bad Name'), (e: ImageError) => e.exitCode === 2 && /invalid image reference/.test(e.message));
    store.close();
  });

  it('writes an OCI index.json naming every tag', async () => {
    const store = await ImageStore.open(await tempDir());
    const web = await bakeOne(store, await tempDir(), 'web', 'one');
    const index = JSON.parse(await readFile(join(store.blobs.root, 'index.json'), 'utf8'));
    const refs = index.manifests.map((m: { annotations: Record<string, string> }) => m.annotations['org.opencontainers.image.ref.name']).sort();
    assert.deepEqual(refs, ['web:1', 'web:latest']);
    assert.ok(index.manifests.every((m: { digest: string }) => m.digest === web.digest));
    store.close();
  });

  it('removes tags, then the image when no tag is left; a tagged digest needs --force', async () => {
    const store = await ImageStore.open(await tempDir());
    const web = await bakeOne(store, await tempDir(), 'web', 'one');
    await assert.rejects(store.remove(web.digest), (e: ImageError) => /is tagged web:1, web:latest/.test(e.message));
    assert.deepEqual(await store.remove('web:1'), { untagged: ['web:1'], deleted: undefined });
    assert.deepEqual(await store.remove('web:latest'), { untagged: ['web:latest'], deleted: web.digest });
    assert.equal(store.getImage(web.digest), undefined);
    store.close();
  });

  it('gc deletes what no tag refers to and never a tagged image', async () => {
    const store = await ImageStore.open(await tempDir());
    const ctx = await tempDir();
    const keep = await bakeOne(store, ctx, 'keep', 'kept content');
    const drop = await bakeOne(store, ctx, 'drop', 'dropped content');
    await store.remove('drop:1');
    await store.remove('drop:latest');
    await ageBlobs(store);
    const dry = await store.gc({ dryRun: true });
    // Its manifest, config and layer, and its signature's manifest and envelope (the empty config `{}` is shared with keep's).
    assert.equal(dry.removedBlobs, 5, 'the dropped image and its signature');
    assert.ok(await store.blobs.has(drop.digest), 'a dry run deletes nothing');
    const result = await store.gc();
    assert.equal(result.removedBlobs, 5);
    assert.equal(await store.blobs.has(drop.digest), false);
    for (const layer of await store.manifest(keep.digest).then((m) => m.layers)) assert.ok(await store.blobs.has(layer.digest));
    assert.ok(await store.blobs.has(keep.digest));
    assert.equal(store.resolve('keep'), keep.digest);
    // The dropped layer's cache entry went with its blob: a rebake rebuilds it.
    const again = await bakeOne(store, ctx, 'drop', 'dropped content');
    assert.equal(again.digest, drop.digest);
    assert.equal(again.cacheHits, 0);
    store.close();
  });

  it('gc keeps blobs younger than the grace period (a bake in flight)', async () => {
    const store = await ImageStore.open(await tempDir());
    const orphan = await store.blobs.putBuffer('just written by a bake that has not finished');
    const result = await store.gc();
    assert.equal(result.removedBlobs, 0);
    assert.ok(await store.blobs.has(orphan.digest));
    assert.ok((await stat(store.blobs.path(orphan.digest))).isFile());
    store.close();
  });

  it('keeps images that a release refers to', async () => {
    const store = await ImageStore.open(await tempDir());
    const web = await bakeOne(store, await tempDir(), 'web', 'one');
    createRelease(store.db, { service: 'web', digest: web.digest, config: {}, createdBy: 'test' });
    await store.remove('web:1');
    const removed = await store.remove('web:latest');
    assert.equal(removed.deleted, undefined, 'a released image is not forgotten');
    await ageBlobs(store);
    await store.gc();
    assert.ok(await store.blobs.has(web.digest));
    store.close();
  });

  it('removes by digest prefix as by digest, never as a tag named like the prefix', async () => {
    const store = await ImageStore.open(await tempDir());
    const web = await bakeOne(store, await tempDir(), 'web', 'one');
    const prefix = web.digest.slice(7, 19);
    await assert.rejects(store.remove(prefix), /is tagged web:1, web:latest: remove the tags or use --force/);
    const removed = await store.remove(prefix, { force: true });
    assert.deepEqual(removed, { untagged: ['web:1', 'web:latest'], deleted: web.digest });
    store.close();
  });

  it('gc waits for no bake: it refuses while a bake holds a lease, and a bake refuses during gc', async () => {
    const store = await ImageStore.open(await tempDir());
    const release = store.lease('bake');
    await assert.rejects(store.gc(), /cannot collect garbage now: bake \(pid \d+ on .+\) is running on this store/);
    const second = store.lease('import'); // bakes and imports run side by side
    second();
    release();
    const gcLease = store.lease('gc');
    assert.throws(() => store.lease('bake'), /cannot bake now: gc \(pid/);
    gcLease();
    assert.equal((await store.gc()).removedBlobs, 0);
    store.close();
  });

  it('drops the lease of a process that died without releasing it', async () => {
    const store = await ImageStore.open(await tempDir());
    const { hostname } = await import('node:os');
    const { spawnSync } = await import('node:child_process');
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    store.db.prepare(`INSERT INTO leases (kind, pid, host, started_at) VALUES ('bake', ?, ?, ?)`).run(Number(dead), hostname(), new Date().toISOString());
    await store.gc();
    assert.equal((store.db.prepare(`SELECT COUNT(*) AS n FROM leases`).get() as { n: number }).n, 0);
    store.close();
  });
});

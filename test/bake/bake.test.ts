import assert from 'node:assert/strict';
import { mkdir, readdir, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { bake } from '../../src/bake/baker.js';
import { BakeError } from '../../src/errors.js';
import { ImageStore } from '../../src/store/image-store.js';
import { readLayer } from '../support/layers.js';
import { copy, imageSpec, run } from '../support/spec.js';
import { tempDir } from '../support/temp.js';

/** Writes a small app tree into `dir`, with file times set to `mtime`. */
async function writeApp(dir: string, mtime: Date): Promise<void> {
  await mkdir(join(dir, 'app', 'lib'), { recursive: true });
  const files: Record<string, string> = {
    'app/server.js': 'console.log("hi")\n',
    'app/lib/util.js': 'export const x = 1;\n',
    'app/run.sh': '#!/bin/sh\necho run\n',
    'static/index.html': '<h1>hi</h1>\n',
  };
  await mkdir(join(dir, 'static'), { recursive: true });
  for (const [path, content] of Object.entries(files)) {
    await writeFile(join(dir, path), content, { mode: path.endsWith('.sh') ? 0o755 : 0o644 });
    await utimes(join(dir, path), mtime, mtime);
  }
}

async function storeIn(dir: string): Promise<ImageStore> {
  const store = await ImageStore.open(dir);
  return store;
}

async function blobCount(store: ImageStore): Promise<number> {
  return (await readdir(join(store.blobs.root, 'blobs', 'sha256'))).length;
}

describe('bake', () => {
  it('is reproducible: two contexts in different folders, homes and file times give one digest', async () => {
    const results = [];
    for (const year of [2001, 2024]) {
      const ctx = await tempDir();
      await writeApp(ctx, new Date(`${year}-03-04T05:06:07Z`));
      const store = await storeIn(await tempDir());
      const spec = imageSpec({
        context: ctx,
        from: { kind: 'host', executables: ['busybox'] },
        steps: [copy('app', '/app'), copy('static/', '/srv/static/'), run('echo built > /app/built.txt && mkdir -p /var/data')],
        env: [['MODE', 'test']],
        workdir: '/app',
        cmd: ['/app/run.sh'],
        port: 8080,
      });
      results.push(await bake({ store, spec }));
      store.close();
    }
    assert.equal(results[0]!.digest, results[1]!.digest);
    assert.deepEqual(
      results[0]!.layers.map((l) => l.digest),
      results[1]!.layers.map((l) => l.digest),
    );
  });

  it('reuses every layer on a rebake with nothing changed, and writes no blob', async () => {
    const ctx = await tempDir();
    await writeApp(ctx, new Date('2020-01-01Z'));
    const store = await storeIn(await tempDir());
    const spec = imageSpec({ context: ctx, from: { kind: 'host', executables: ['busybox'] }, steps: [copy('app', '/app'), run('echo x > /x')] });
    const first = await bake({ store, spec });
    assert.equal(first.cacheHits, 0);
    assert.equal(first.version, 'test:1');
    const blobs = await blobCount(store);
    const second = await bake({ store, spec });
    assert.equal(second.digest, first.digest);
    assert.equal(second.cacheHits, second.layers.length);
    assert.equal(second.newVersion, false);
    assert.equal(second.version, 'test:1');
    assert.equal(await blobCount(store), blobs, 'no blob written by a fully cached bake');
    store.close();
  });

  it('rebuilds from the changed step on: earlier steps stay cached', async () => {
    const ctx = await tempDir();
    await writeApp(ctx, new Date('2020-01-01Z'));
    const store = await storeIn(await tempDir());
    const spec = imageSpec({
      context: ctx,
      from: { kind: 'host', executables: ['busybox'] },
      steps: [copy('static', '/static'), copy('app', '/app'), run('cat /app/server.js > /copy.js')],
    });
    const first = await bake({ store, spec });
    await writeFile(join(ctx, 'app', 'server.js'), 'console.log("changed")\n');
    const second = await bake({ store, spec });
    assert.notEqual(second.digest, first.digest);
    assert.deepEqual(
      second.layers.map((l) => l.cached),
      [true, true, false, false],
    );
    assert.equal(second.version, 'test:2');
    const runLayer = await readLayer(store, second.layers[3]!.digest);
    assert.equal(runLayer.find((e) => e.name === 'copy.js')?.content, 'console.log("changed")\n');
    store.close();
  });

  it('writes normalised entries: sorted names, fixed mtime, root owners, x bits kept', async () => {
    const ctx = await tempDir();
    await writeApp(ctx, new Date('2020-01-01Z'));
    const store = await storeIn(await tempDir());
    const result = await bake({ store, spec: imageSpec({ context: ctx, steps: [copy('app', '/app')] }) });
    assert.equal(result.layers.length, 1, 'a scratch base adds no layer');
    const entries = await readLayer(store, result.layers[0]!.digest);
    const names = entries.map((e) => e.name);
    assert.deepEqual(names, [...names].sort());
    assert.deepEqual(names, ['app/', 'app/lib/', 'app/lib/util.js', 'app/run.sh', 'app/server.js']);
    for (const entry of entries) {
      assert.equal(entry.mtime, 0);
      assert.equal(entry.uid, 0);
      assert.equal(entry.gid, 0);
    }
    assert.equal(entries.find((e) => e.name === 'app/run.sh')!.mode, 0o755);
    assert.equal(entries.find((e) => e.name === 'app/server.js')!.mode, 0o644);
    store.close();
  });

  it('applies copy excludes, mode and owner', async () => {
    const ctx = await tempDir();
    await writeApp(ctx, new Date('2020-01-01Z'));
    await writeFile(join(ctx, 'app', 'server.test.js'), 'test');
    const store = await storeIn(await tempDir());
    const result = await bake({
      store,
      spec: imageSpec({ context: ctx, steps: [copy('app', '/app', { exclude: ['*.test.js', 'lib/'], mode: 0o600, owner: { uid: 1000, gid: 1001 } })] }),
    });
    const entries = await readLayer(store, result.layers[0]!.digest);
    assert.deepEqual(
      entries.map((e) => e.name),
      ['app/', 'app/run.sh', 'app/server.js'],
    );
    const server = entries.find((e) => e.name === 'app/server.js')!;
    assert.equal(server.mode, 0o600);
    assert.equal(server.uid, 1000);
    assert.equal(server.gid, 1001);
    store.close();
  });

  it('never reads outside the context: a symlinked src is refused, inner symlinks stay links', async () => {
    const ctx = await tempDir();
    const outside = await tempDir();
    await writeFile(join(outside, 'secret.txt'), 'outside');
    await mkdir(join(ctx, 'app'));
    await writeFile(join(ctx, 'app', 'a.txt'), 'a');
    await symlink(join(outside, 'secret.txt'), join(ctx, 'app', 'leak'));
    await symlink(outside, join(ctx, 'out'));
    const store = await storeIn(await tempDir());
    await assert.rejects(
      bake({ store, spec: imageSpec({ context: ctx, steps: [copy('out', '/x')] }) }),
      (error: Error) => error instanceof BakeError && /expected a path inside the build context, got "out"/.test(error.message),
    );
    await assert.rejects(
      bake({ store, spec: imageSpec({ context: ctx, steps: [copy('out/secret.txt', '/x')] }) }),
      (error: Error) => error instanceof BakeError && /inside the build context/.test(error.message),
    );
    const result = await bake({ store, spec: imageSpec({ context: ctx, steps: [copy('app', '/app')] }) });
    const entries = await readLayer(store, result.layers[0]!.digest);
    const leak = entries.find((e) => e.name === 'app/leak')!;
    assert.equal(leak.type, 'symlink');
    assert.equal(leak.linkname, join(outside, 'secret.txt'));
    assert.ok(!entries.some((e) => e.content.includes('outside')));
    store.close();
  });

  it('refuses secret-looking files unless named as the src', async () => {
    const ctx = await tempDir();
    await mkdir(join(ctx, 'app', 'certs'), { recursive: true });
    await writeFile(join(ctx, 'app', 'index.js'), 'x');
    await writeFile(join(ctx, 'app', '.env'), 'TOKEN=1');
    await writeFile(join(ctx, 'app', '.env.example'), 'TOKEN=');
    await writeFile(join(ctx, 'app', 'certs', 'server.pem'), 'KEY');
    const store = await storeIn(await tempDir());
    await assert.rejects(
      bake({ store, spec: imageSpec({ context: ctx, steps: [copy('app', '/app')] }) }),
      (error: Error) => error instanceof BakeError && error.message.includes('app/.env, app/certs/server.pem') && error.exitCode === 2,
    );
    const excluded = await bake({ store, spec: imageSpec({ context: ctx, steps: [copy('app', '/app', { exclude: ['.env', '*.pem'] })] }) });
    const names = (await readLayer(store, excluded.layers[0]!.digest)).map((e) => e.name);
    assert.ok(names.includes('app/.env.example'));
    const named = await bake({ store, spec: imageSpec({ context: ctx, steps: [copy('app/certs/server.pem', '/etc/ssl/server.pem')] }) });
    const entries = await readLayer(store, named.layers[0]!.digest);
    assert.equal(entries.find((e) => e.name === 'etc/ssl/server.pem')?.content, 'KEY');
    store.close();
  });

  it('captures what a run step changes, deletions as whiteouts', async () => {
    const ctx = await tempDir();
    await writeApp(ctx, new Date('2020-01-01Z'));
    const store = await storeIn(await tempDir());
    const result = await bake({
      store,
      spec: imageSpec({
        context: ctx,
        from: { kind: 'host', executables: ['busybox'] },
        steps: [copy('app', '/app'), run('rm /app/lib/util.js && echo "$GREETING" > /app/greeting && ln /app/greeting /app/hard && mkdir -p /tmp/ignored && echo t > /tmp/ignored/x'), run(['/usr/bin/busybox', 'rm', '-r', '/app/lib'])],
        env: [['GREETING', 'hello there']],
      }),
    });
    const runLayer = await readLayer(store, result.layers[2]!.digest);
    const byName = new Map(runLayer.map((e) => [e.name, e]));
    assert.equal(byName.get('app/greeting')?.content, 'hello there\n');
    assert.equal(byName.get('app/hard')?.type, 'link');
    assert.ok(byName.has('app/lib/.wh.util.js'));
    assert.ok(![...byName.keys()].some((n) => n.startsWith('tmp') || n.startsWith('proc') || n.startsWith('dev')));
    const second = await readLayer(store, result.layers[3]!.digest);
    assert.deepEqual(
      second.map((e) => e.name),
      ['app/.wh.lib'],
    );
    store.close();
  });

  it('fails a run step with its exit code and last output lines', async () => {
    const ctx = await tempDir();
    const store = await storeIn(await tempDir());
    await assert.rejects(
      bake({ store, spec: imageSpec({ context: ctx, from: { kind: 'host', executables: ['busybox'] }, steps: [run('echo about to fail; exit 3')] }) }),
      (error: Error) => error instanceof BakeError && /failed with exit code 3/.test(error.message) && /about to fail/.test(error.message),
    );
    await assert.rejects(
      bake({ store, spec: imageSpec({ context: ctx, steps: [run('echo no shell')] }) }),
      (error: Error) => error instanceof BakeError && /\/bin\/sh not found in the image/.test(error.message),
    );
    assert.equal(store.listImages().length, 0, 'a failed bake records no image');
    store.close();
  });

  it('runs steps without network and with the image as root', async () => {
    const ctx = await tempDir();
    const store = await storeIn(await tempDir());
    const result = await bake({
      store,
      spec: imageSpec({
        context: ctx,
        from: { kind: 'host', executables: ['busybox'] },
        steps: [run('ls / > /root-listing; ip -o link 2>/dev/null | wc -l > /links || cat /proc/net/dev | tail -n +3 | wc -l > /links')],
      }),
    });
    const entries = await readLayer(store, result.layers[1]!.digest);
    const listing = entries.find((e) => e.name === 'root-listing')!.content.split('\n');
    assert.ok(!listing.includes('home') && !listing.includes('root'), `host folders must not be visible: ${listing.join(' ')}`);
    assert.equal(entries.find((e) => e.name === 'links')!.content.trim(), '1', 'only loopback inside the sandbox');
    store.close();
  });

  it('builds on another stored image and records provenance', async () => {
    const ctx = await tempDir();
    await writeApp(ctx, new Date('2020-01-01Z'));
    const store = await storeIn(await tempDir());
    const base = await bake({ store, spec: imageSpec({ name: 'base', context: ctx, steps: [copy('static', '/static')], env: [['A', '1']], entrypoint: ['/x'], cmd: ['y'] }) });
    const child = await bake({ store, spec: imageSpec({ name: 'child', context: ctx, from: { kind: 'image', ref: 'base:latest' }, steps: [copy('app', '/app')], entrypoint: ['/z'] }) });
    const manifest = await store.manifest(child.digest);
    const baseManifest = await store.manifest(base.digest);
    assert.deepEqual(manifest.layers.slice(0, 1), baseManifest.layers);
    const config = await store.config(child.digest);
    assert.deepEqual(config.config?.Entrypoint, ['/z']);
    assert.equal(config.config?.Cmd, undefined, 'a new entrypoint drops the base cmd');
    assert.ok(config.config?.Env?.includes('A=1'));
    assert.equal(config.config?.Labels?.['dev.imago.base'], base.digest);
    assert.match(config.config?.Labels?.['dev.imago.spec'] ?? '', /^sha256:/);
    assert.match(config.config?.Labels?.['dev.imago.context'] ?? '', /^sha256:/);
    assert.equal(config.created, '1970-01-01T00:00:00.000Z');
    const record = store.getImage(child.digest)!;
    assert.equal(record.provenance?.base, base.digest);
    await assert.rejects(
      bake({ store, spec: imageSpec({ context: ctx, from: { kind: 'image', ref: 'nope:1' } }) }),
      (error: Error) => error instanceof BakeError && /images\.test\.from: image 'nope:1' not found/.test(error.message) && (error as BakeError).exitCode === 2,
    );
    store.close();
  });

  it('tags latest, a new version per new digest, and extra tags', async () => {
    const ctx = await tempDir();
    await writeApp(ctx, new Date('2020-01-01Z'));
    const store = await storeIn(await tempDir());
    const spec = imageSpec({ name: 'web', context: ctx, steps: [copy('app', '/app')] });
    const one = await bake({ store, spec, tags: ['1.4', 'other:x'] });
    assert.deepEqual(one.tags.sort(), ['other:x', 'web:1', 'web:1.4', 'web:latest']);
    await writeFile(join(ctx, 'app', 'server.js'), 'v2');
    const two = await bake({ store, spec });
    assert.equal(two.version, 'web:2');
    assert.equal(store.resolve('web'), two.digest);
    assert.equal(store.resolve('web:1'), one.digest);
    store.close();
  });
});

import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { imago, REPO, sh } from '../support/cli.js';
import { tempDir } from '../support/temp.js';

const HELLO = join(REPO, 'examples', 'hello');

describe('quick start: imago bake on examples/hello', () => {
  it('bakes, rebakes from cache, lists, inspects; third-party tools accept the image', async () => {
    const home = await tempDir();
    const first = await imago(['bake'], { cwd: HELLO, home });
    assert.equal(first.code, 0, first.stderr);
    const digest = /hello:1 (sha256:[a-f0-9]{64})/.exec(first.stdout)?.[1];
    assert.ok(digest, first.stdout);
    assert.match(first.stderr, /\[3\/3\] run busybox mkdir -p \/var\/lib\/hello: built/);

    const second = await imago(['bake', '--json'], { cwd: HELLO, home });
    assert.equal(second.code, 0, second.stderr);
    const [result] = JSON.parse(second.stdout);
    assert.equal(result.digest, digest);
    assert.equal(result.cacheHits, result.layers.length);
    assert.equal(result.newVersion, false);

    const images = JSON.parse((await imago(['images', '--json'], { home })).stdout);
    assert.deepEqual(images.map((i: { tags: string[] }) => i.tags.sort()), [['hello:1', 'hello:latest']]);

    const inspect = JSON.parse((await imago(['image', 'inspect', 'hello', '--json'], { home })).stdout);
    assert.equal(inspect.digest, digest);
    assert.deepEqual(inspect.config.config.Entrypoint, ['/usr/bin/node']);
    assert.equal(inspect.config.config.User, '1000:1000');
    assert.ok(inspect.provenance.gitCommit === undefined || /^[0-9a-f]{40}/.test(inspect.provenance.gitCommit));

    // The store is itself an OCI layout: skopeo and umoci read it directly.
    const store = join(home, 'store');
    const skopeo = JSON.parse(await sh('skopeo', ['inspect', `oci:${store}:hello:latest`]));
    assert.equal(skopeo.Digest, digest);
    const bundle = join(await tempDir(), 'bundle');
    await sh('umoci', ['unpack', '--image', `${store}:hello:1`, bundle]);
    assert.match(await readFile(join(bundle, 'rootfs', 'app', 'server.js'), 'utf8'), /listening/);
    const version = await sh(join(bundle, 'rootfs', 'lib64', 'ld-linux-x86-64.so.2'), ['--library-path', join(bundle, 'rootfs', 'lib', 'x86_64-linux-gnu'), join(bundle, 'rootfs', 'usr', 'bin', 'node'), '--version']).catch(() => 'skipped-arch');
    assert.ok(version === 'skipped-arch' ? process.arch !== 'x64' : /^v\d+/.test(version), `node from the unpacked image runs: ${version}`);

    // docker load of an export, and the image runs in Docker.
    const archive = join(await tempDir(), 'hello.tar');
    const name = `imago-test-hello-${process.pid}:1`;
    assert.equal((await imago(['image', 'tag', 'hello:1', name], { home })).code, 0);
    const exported = await imago(['image', 'export', name, '-f', 'docker', '-o', archive], { home });
    assert.equal(exported.code, 0, exported.stderr);
    const loaded = await sh('docker', ['load', '-i', archive]);
    assert.match(loaded, new RegExp(name));
    try {
      const out = await sh('docker', ['run', '--rm', '--network', 'none', '--entrypoint', '/usr/bin/node', name, '-e', 'console.log(process.env.APP_VERSION, process.cwd())']);
      assert.equal(out.trim(), '1 /app');
    } finally {
      await sh('docker', ['rmi', '-f', name]).catch(() => undefined);
    }
  });

  it('the TypeScript config bakes the same digest as the YAML one', async () => {
    const home = await tempDir();
    const yaml = await imago(['bake', '--json'], { cwd: HELLO, home });
    const ts = await imago(['bake', '--json'], { cwd: join(REPO, 'examples', 'hello-ts'), home });
    assert.equal(ts.code, 0, ts.stderr);
    assert.equal(JSON.parse(ts.stdout)[0].digest, JSON.parse(yaml.stdout)[0].digest);
  });

  it('bad input exits 2 with the file, the key path, what was expected and what was got; nothing is stored', async () => {
    const home = await tempDir();
    const dir = await tempDir();
    await mkdir(join(dir, 'app'));
    await writeFile(join(dir, 'imago.yaml'), 'images:\n  web:\n    copy:\n      - { src: app, dest: /app }\n      - { src: ../secrets, dest: /s }\n');
    const bad = await imago(['bake'], { cwd: dir, home });
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr.trim(), `error: ${join(dir, 'imago.yaml')}: images.web.copy[1].src: expected a path inside the build context, got "../secrets"`);

    await writeFile(join(dir, 'imago.yaml'), 'images:\n  web:\n    port: many\n');
    const port = await imago(['bake'], { cwd: dir, home });
    assert.equal(port.code, 2);
    assert.match(port.stderr, /images\.web\.port: expected .*, got "many"/);

    const unknown = await imago(['image', 'inspect', 'nope:1'], { home });
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /^error: image 'nope:1' not found in the store/);

    const format = await imago(['image', 'export', 'x', '-o', '/tmp/x', '-f', 'zip'], { home });
    assert.equal(format.code, 2);
    assert.match(format.stderr, /--format: expected one of oci, oci-dir, docker, got "zip"/);

    const usage = await imago(['bake', '--bogus'], { cwd: dir, home });
    assert.equal(usage.code, 2);

    const none = await imago(['images', '--json'], { home });
    assert.deepEqual(JSON.parse(none.stdout), []);
  });
});

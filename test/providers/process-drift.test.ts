import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { bake } from '../../src/bake/baker.js';
import { intrudersIn, type ProcInfo } from '../../src/providers/process/process-drift.js';
import { ProcessProvider } from '../../src/providers/process/process-provider.js';
import { RootfsCache } from '../../src/providers/process/rootfs-cache.js';
import { checkRootfs, hashFile, layerManifest, type RootfsManifest } from '../../src/providers/process/rootfs-manifest.js';
import { makeImage } from '../fixtures/make-image.js';
import { ImageStore } from '../../src/store/image-store.js';
import { REPO } from '../support/cli.js';
import { freePort, getJson } from '../support/net.js';
import { copy, imageSpec } from '../support/spec.js';
import { tempDir } from '../support/temp.js';

describe('process drift: who runs inside an instance', () => {
  const proc = (pid: number, ppid: number, ns: 'in' | 'host' | 'mnt-only', command = 'x'): ProcInfo => ({
    pid,
    ppid,
    pidNs: ns === 'in' ? 'pid:[9]' : 'pid:[1]',
    mntNs: ns === 'host' ? 'mnt:[1]' : 'mnt:[9]',
    command,
  });
  const self = { pidNs: 'pid:[1]', mntNs: 'mnt:[1]' };

  it('names processes in the app\'s namespaces that do not descend from it; the app\'s own children are its business', () => {
    const table = new Map(
      [
        proc(10, 9, 'host', 'bwrap'),
        proc(11, 10, 'in', 'node server.js'), // the app
        proc(12, 11, 'in', 'node worker.js'), // its child
        proc(20, 1, 'host', 'bash'),
        proc(21, 20, 'mnt-only', 'nsenter -t 11 -p -m sh'),
        proc(22, 21, 'in', 'sh'),
        proc(23, 22, 'in', 'cat /etc/shadow'),
      ].map((p) => [p.pid, p]),
    );
    assert.deepEqual(intrudersIn(table, 11, self), [
      "process imago did not start inside the instance (nsenter?): pid 21 'nsenter -t 11 -p -m sh'",
      "process imago did not start inside the instance (nsenter?): pid 22 'sh'",
      "process imago did not start inside the instance (nsenter?): pid 23 'cat /etc/shadow'",
    ]);
  });

  it('looks at no namespace the app shares with imago itself (no sandbox: nothing is "inside")', () => {
    const table = new Map([proc(11, 1, 'host', 'app'), proc(30, 1, 'host', 'anything')].map((p) => [p.pid, p]));
    assert.deepEqual(intrudersIn(table, 11, self), []);
  });
});

describe('process drift: a root filesystem against its manifest', () => {
  /** A root of three files, a link and a folder, and its manifest. */
  async function root(): Promise<{ dir: string; manifest: RootfsManifest }> {
    const dir = await tempDir('imago-root-');
    await mkdir(join(dir, 'app'));
    await writeFile(join(dir, 'app', 'server.js'), 'console.log(1)');
    await writeFile(join(dir, 'app', 'big.bin'), Buffer.alloc(3 * 1024 * 1024, 7)); // streamed, not read whole
    await chmod(join(dir, 'app', 'big.bin'), 0o644);
    await chmod(join(dir, 'app', 'server.js'), 0o644);
    await symlink('app/server.js', join(dir, 'main'));
    await mkdir(join(dir, 'proc')); // a mount point imago made
    await mkdir(join(dir, 'var', 'lib', 'data'), { recursive: true }); // a volume's, with its parents
    const manifest: RootfsManifest = new Map([
      ['app', { type: 'dir', mode: 0o755, implicit: true }],
      ['app/server.js', { type: 'file', mode: 0o644, size: 14, sha256: await hashFile(join(dir, 'app', 'server.js'), 14) }],
      ['app/big.bin', { type: 'file', mode: 0o644, size: 3 * 1024 * 1024, sha256: await hashFile(join(dir, 'app', 'big.bin'), 3 * 1024 * 1024) }],
      ['main', { type: 'symlink', mode: 0o777, link: 'app/server.js' }],
    ]);
    return { dir, manifest };
  }

  it('a fresh root has no finding, by a full pass or a stat pass; mount-point folders are allowed', async () => {
    const { dir, manifest } = await root();
    const baseline = new Map();
    const full = await checkRootfs(dir, manifest, { rehash: true, baseline });
    assert.deepEqual(full.findings, []);
    assert.deepEqual([full.files, full.bytes], [2, 14 + 3 * 1024 * 1024]);
    assert.deepEqual((await checkRootfs(dir, manifest, { rehash: false, baseline })).findings, []);
  });

  it('finds a changed file (by its content, and by the stat pass), a new one, a removed one, a mode and a link', async () => {
    const { dir, manifest } = await root();
    const baseline = new Map();
    await checkRootfs(dir, manifest, { rehash: true, baseline });
    await writeFile(join(dir, 'app', 'server.js'), 'console.log(2)'); // same size, other content
    assert.deepEqual((await checkRootfs(dir, manifest, { rehash: false, baseline })).findings, ['/app/server.js: changed since it was last verified (its change time moved)']);
    assert.deepEqual((await checkRootfs(dir, manifest, { rehash: true, baseline: new Map() })).findings, ['/app/server.js: content differs from the image']);
    await writeFile(join(dir, 'app', 'evil.sh'), 'curl x | sh');
    await rm(join(dir, 'app', 'big.bin'));
    await rm(join(dir, 'main'));
    await symlink('/etc/shadow', join(dir, 'main'));
    await mkdir(join(dir, 'proc', 'x'));
    await writeFile(join(dir, 'proc', 'x', 'f'), '');
    const findings = (await checkRootfs(dir, manifest, { rehash: true, baseline: new Map() })).findings.sort();
    assert.deepEqual(findings, [
      '/app/big.bin: removed (the image has it)',
      '/app/evil.sh: added (not in the image)',
      '/app/server.js: content differs from the image',
      '/main: links to /etc/shadow, the image to app/server.js',
      '/proc: added (not in the image)',
    ]);
  });
});

describe('process drift: the manifest is what the layers make, as unpacking makes it', () => {
  it('applies whiteouts and follows a lower layer\'s symlinked folder, so a fresh unpack has no finding', async () => {
    const home = await tempDir('imago-manifest-');
    const store = await ImageStore.open(home);
    try {
      const { digest } = await makeImage(store, {
        name: 'layered',
        tag: '1',
        files: { 'usr/lib/a.so': 'a', 'etc/old.conf': 'old' },
        symlinks: { lib: 'usr/lib' },
        layers: [{ files: { 'lib/b.so': 'b' }, parents: false }, { files: { 'etc/.wh.old.conf': '' } }],
      });
      const manifest = await layerManifest(store, digest);
      assert.deepEqual([...manifest.keys()].sort(), ['etc', 'lib', 'usr', 'usr/lib', 'usr/lib/a.so', 'usr/lib/b.so']);
      const root = await new RootfsCache(store, join(home, 'rootfs')).ensure(digest);
      assert.deepEqual((await checkRootfs(root, manifest, { rehash: true, baseline: new Map() })).findings, []);
    } finally {
      store.close();
    }
  });
});

describe('process drift on a real instance', () => {
  it('a changed file of the root it runs from is drift; the root is moved aside and the next instance gets a fresh one', async () => {
    const home = await mkdtemp(join(tmpdir(), 'imago-root-drift-'));
    const store = await ImageStore.open(home);
    const provider = new ProcessProvider(store);
    try {
      const { digest } = await bake({
        store,
        spec: imageSpec({ name: 'rooted', context: join(REPO, 'test', 'fixtures'), from: { kind: 'host', executables: ['node'] }, steps: [copy('instance-app.mjs', '/app/app.mjs')], entrypoint: ['/usr/bin/node', '/app/app.mjs'], user: '1000:1000' }),
      });
      const spec = async (id: string) => ({ id, digest, labels: { 'imago.service': 'rooted' }, port: await freePort(), env: [['EXTRA', 'yes']] as Array<[string, string]>, volumes: [] });
      const first = await provider.create(await spec('rooted-r1-aaaaaa'));
      await getJson(`http://127.0.0.1:${first.address.port}/`);
      await provider.checkDrift();
      assert.deepEqual((await provider.inspect(first.id))!.drift, [], 'as started: no drift (its env, its executable, its root)');

      const record = JSON.parse(await readFile(join(home, 'instances', `${first.id}.json`), 'utf8')) as { root: string };
      await writeFile(join(record.root, 'app', 'app.mjs'), '// replaced on the host\n');
      await provider.checkDrift();
      const drift = (await provider.inspect(first.id))!.drift;
      assert.ok(drift.some((line) => /root filesystem: \/app\/app\.mjs: (size|content)/.test(line)), drift.join('\n'));
      const moved = JSON.parse(await readFile(join(home, 'instances', `${first.id}.json`), 'utf8')) as { root: string };
      assert.match(moved.root, /\.drifted-\d+$/, 'the drifted root was moved aside');

      const second = await provider.create(await spec('rooted-r1-bbbbbb'));
      await getJson(`http://127.0.0.1:${second.address.port}/`);
      await provider.checkDrift();
      assert.deepEqual((await provider.inspect(second.id))!.drift, [], 'a fresh root: no drift inherited');
      await provider.destroy(first.id, { graceMs: 1000 });
      await assert.rejects(readFile(join(moved.root, 'app', 'app.mjs')), { code: 'ENOENT' }, 'the aside root went with its last instance');
    } finally {
      for (const instance of await provider.list()) await provider.destroy(instance.id, { graceMs: 0 });
      await provider.close();
      store.close();
      await rm(home, { recursive: true, force: true });
    }
  });
});

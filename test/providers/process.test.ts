import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { bake } from '../../src/bake/baker.js';
import { ProcessProvider } from '../../src/providers/process/process-provider.js';
import { ImageStore } from '../../src/store/image-store.js';
import { REPO } from '../support/cli.js';
import { freePort, getJson } from '../support/net.js';
import { copy, imageSpec } from '../support/spec.js';
import { runProviderSuite } from './provider-suite.js';

runProviderSuite('process', { newProvider: (store) => new ProcessProvider(store) });

describe('process provider limits', () => {
  it('holds an instance to its memory and pids limits with cgroups, and removes them with it', async () => {
    const home = await mkdtemp(join(tmpdir(), 'imago-cgroup-'));
    const store = await ImageStore.open(home);
    const provider = new ProcessProvider(store);
    try {
      const { digest } = await bake({
        store,
        spec: imageSpec({ name: 'limits', context: join(REPO, 'test', 'fixtures'), from: { kind: 'host', executables: ['node'] }, steps: [copy('instance-app.mjs', '/app/app.mjs')], entrypoint: ['/usr/bin/node', '/app/app.mjs'], user: '1000:1000' }),
      });
      const id = `limits-r1-${process.pid.toString(16)}`;
      const instance = await provider.create({ id, digest, labels: { 'imago.service': 'limits' }, port: await freePort(), env: [], volumes: [], resources: { memory: 300 * 1024 ** 2, pids: 77 } });
      await getJson(`http://127.0.0.1:${instance.address.port}/`);
      const v2 = await readFile('/sys/fs/cgroup/cgroup.controllers', 'utf8').then(() => true, () => false);
      const memory = v2 ? `/sys/fs/cgroup/imago/${id}/memory.max` : `/sys/fs/cgroup/memory/imago/${id}/memory.limit_in_bytes`;
      const pids = v2 ? `/sys/fs/cgroup/imago/${id}/pids.max` : `/sys/fs/cgroup/pids/imago/${id}/pids.max`;
      const procs = v2 ? `/sys/fs/cgroup/imago/${id}/cgroup.procs` : `/sys/fs/cgroup/pids/imago/${id}/cgroup.procs`;
      assert.equal((await readFile(memory, 'utf8')).trim(), String(300 * 1024 ** 2));
      assert.equal((await readFile(pids, 'utf8')).trim(), '77');
      assert.ok((await readFile(procs, 'utf8')).trim().split('\n').length >= 2, 'bubblewrap and the app are inside');
      await provider.destroy(id, { graceMs: 2000 });
      await assert.rejects(readFile(pids, 'utf8'), { code: 'ENOENT' });
    } finally {
      for (const instance of await provider.list()) await provider.destroy(instance.id, { graceMs: 0 });
      store.close();
      await rm(home, { recursive: true, force: true });
    }
  });
});

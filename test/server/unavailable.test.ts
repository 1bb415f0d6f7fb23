import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProcessProvider } from '../../src/providers/process/process-provider.js';
import { Providers } from '../../src/providers/registry.js';
import { ControlPlane } from '../../src/server/control-plane.js';
import { ensureService } from '../../src/state/services.js';
import { ImageStore } from '../../src/store/image-store.js';
import { tempDir } from '../support/temp.js';

describe('a control plane whose provider for a service cannot be had', () => {
  it('still starts, and says which service is down and why', async () => {
    const store = await ImageStore.open(await tempDir('imago-unavailable-'));
    try {
      ensureService(store.db, { name: 'web', env: 'default', provider: 'docker', replicas: 2, actor: 'test' });
      ensureService(store.db, { name: 'api', env: 'default', provider: 'process', replicas: 0, actor: 'test' });
      const plane = new ControlPlane(store, Providers.of(new ProcessProvider(store)));
      await plane.start();
      try {
        assert.match(plane.unavailable.get('web') ?? '', /provider 'docker' is not available here/);
        const status = await plane.status();
        const web = status.find((s) => s.service === 'web')!;
        assert.deepEqual(web.instances, []);
        assert.match(String(web.error), /not available here/);
        assert.ok(status.some((s) => s.service === 'api' && !s.error), 'the other service runs');
        await assert.rejects(plane.scale('web', 3, 'test'), /service 'web' is unavailable: provider 'docker' is not available here/);
      } finally {
        await plane.close({ stopRouters: true });
      }
    } finally {
      store.close();
    }
  });

  it('refuses to start beside another live control plane of the same state folder', async () => {
    const store = await ImageStore.open(await tempDir('imago-two-planes-'));
    try {
      store.db.prepare(`INSERT INTO locks (name, owner, expires_at) VALUES ('control-plane', 'imago-server:elsewhere:1', ?)`).run(Date.now() + 60_000);
      await assert.rejects(new ControlPlane(store, Providers.of(new ProcessProvider(store))).start(), /another imago control plane runs for the state folder '.*' \(imago-server:elsewhere:1\): stop it first, or use another --home/);
      // One that died on this host is taken over.
      store.db.prepare(`UPDATE locks SET owner = ? WHERE name = 'control-plane'`).run(`imago-server:${(await import('node:os')).hostname()}:999999`);
      const plane = new ControlPlane(store, Providers.of(new ProcessProvider(store)));
      await plane.start();
      await plane.close({ stopRouters: true });
    } finally {
      store.close();
    }
  });
});

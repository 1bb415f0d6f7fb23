import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bake } from '../../src/bake/baker.js';
import { normaliseConfig } from '../../src/config/normalise.js';
import type { Digest } from '../../src/oci/digest.js';
import { DockerProvider } from '../../src/providers/docker/docker-provider.js';
import type { Provider } from '../../src/providers/provider.js';
import { Providers } from '../../src/providers/registry.js';
import { ControlPlane } from '../../src/server/control-plane.js';
import { stopRoutersIn } from '../../src/router/data-plane.js';
import { ImageStore } from '../../src/store/image-store.js';
import { serviceStatus } from '../support/plane.js';
import { REPO } from '../support/cli.js';
import { PROVIDERS } from '../support/providers.js';
import { getJson } from '../support/net.js';

for (const { name: providerName, make } of PROVIDERS) {
  describe(`a stateful service on the ${providerName} provider`, () => {
    let home: string;
    let store: ImageStore;
    let provider: Provider;
    let plane: ControlPlane | undefined;
    const digests: Digest[] = [];

    before(async () => {
      home = await mkdtemp(join(tmpdir(), 'imago-stateful-'));
      store = await ImageStore.open(home);
      provider = make(store);
      // test/fixtures/instance-app.mjs writes and reads files where asked; three versions, three digests.
      for (const version of ['1', '2', '3']) {
        const config = normaliseConfig(
          {
            images: {
              notes: { context: join(REPO, 'test', 'fixtures'), from: { host: ['node'] }, copy: [{ src: 'instance-app.mjs', dest: '/app/app.mjs' }], env: { VERSION: version }, workdir: '/app', entrypoint: ['/usr/bin/node', '/app/app.mjs'], user: '1000:1000' },
            },
          },
          join(REPO, 'test', 'fixtures', 'imago.yaml'),
        );
        digests.push((await bake({ store, spec: config.images.notes! })).digest);
      }
    });

    after(async () => {
      await plane?.close({ stopRouters: true });
      await stopRoutersIn(store.home); // a test that failed between a close and a start left one
      for (const instance of await provider.list()) await provider.destroy(instance.id, { graceMs: 0 });
      await provider.close();
      store.close();
      await rm(home, { recursive: true, force: true });
    });

    it('keeps a volume\'s data across two redeploys; the old instances are gone', async () => {
      const config = normaliseConfig(
        { services: { notes: { image: 'notes', replicas: 2, volumes: { data: '/var/lib/notes' }, health: { http: '/', interval: '50ms', startPeriod: '10s' }, stopGrace: '2s', drainTimeout: '1s', provider: providerName } } },
        join(REPO, 'test', 'fixtures', 'imago.yaml'),
      );
      plane = new ControlPlane(store, Providers.of(provider));
      await plane.start();
      const spec = config.services.notes!;
      const first = await plane.deploy(spec, digests[0]!, 'test');
      assert.equal(first.outcome, 'live', first.reason);
      const written = await getJson(`${(await serviceStatus(plane, 'notes')).url}/write?path=/var/lib/notes/note&data=kept`);
      assert.equal(written.status, 200, JSON.stringify(written.body));

      const second = await plane.deploy(spec, digests[1]!, 'test');
      assert.equal(second.outcome, 'live', second.reason);
      const third = await plane.deploy(spec, digests[2]!, 'test');
      assert.equal(third.outcome, 'live', third.reason);

      // Every instance of the third release reads what the first one wrote.
      const running = await provider.list({ 'imago.service': 'notes' });
      assert.deepEqual(running.map((i) => i.id).sort(), [...third.started].sort(), 'only the third release\'s instances exist');
      for (const instance of running) {
        const { body } = await getJson<{ data: string }>(`http://127.0.0.1:${instance.address.port}/read?path=/var/lib/notes/note`);
        assert.equal(body.data, 'kept', instance.id);
      }
      for (const id of [...first.started, ...second.started]) assert.equal(await provider.inspect(id), undefined, `${id} is gone`);

      if (provider instanceof DockerProvider) {
        // The volume is a Docker named volume; it goes only when asked for, and not while in use.
        assert.deepEqual(await provider.removeVolumes('notes'), [], 'in use: kept');
        await plane.close({ stopRouters: true });
        plane = undefined;
        for (const instance of running) await provider.destroy(instance.id, { graceMs: 0 });
        const [removed] = await provider.removeVolumes('notes');
        assert.match(removed ?? '', /^imago-[0-9a-f]{12}-notes-data$/);
      }
    });
  });
}

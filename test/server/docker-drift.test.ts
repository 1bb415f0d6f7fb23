import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bake } from '../../src/bake/baker.js';
import { normaliseConfig } from '../../src/config/normalise.js';
import type { InstanceSnapshot } from '../../src/controller/service-controller.js';
import { DockerProvider } from '../../src/providers/docker/docker-provider.js';
import { ProcessProvider } from '../../src/providers/process/process-provider.js';
import { Providers } from '../../src/providers/registry.js';
import { ControlPlane } from '../../src/server/control-plane.js';
import { ImageStore } from '../../src/store/image-store.js';
import { REPO, sh } from '../support/cli.js';
import { waitFor } from '../support/net.js';

/** Runs the docker CLI; resolves with what it printed. */
const docker = (...args: string[]) => sh('docker', args);

describe('imago status on the docker provider notices changes made from outside', () => {
  let home: string;
  let store: ImageStore;
  let plane: ControlPlane;

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'imago-drift-'));
    store = await ImageStore.open(home);
    plane = new ControlPlane(store, Providers.of(new DockerProvider(store)));
  });

  after(async () => {
    await plane.close();
    const provider = new DockerProvider(store);
    for (const instance of await provider.list()) await provider.destroy(instance.id, { graceMs: 0 });
    await provider.close();
    store.close();
    await rm(home, { recursive: true, force: true });
  });

  it('reports a docker exec that wrote a file, a docker stop, and a docker rm', async () => {
    const config = normaliseConfig(
      {
        images: { hello: { context: join(REPO, 'examples', 'hello'), from: { host: ['node', 'busybox'] }, copy: [{ src: 'app/', dest: '/app' }], workdir: '/app', entrypoint: ['/usr/bin/node'], cmd: ['server.js'], user: '1000:1000' } },
        services: { web: { image: 'hello', replicas: 3, provider: 'docker', health: { http: '/healthz', interval: '100ms', startPeriod: '10s' }, stopGrace: '2s', drainTimeout: '1s' } },
      },
      join(REPO, 'examples', 'hello', 'imago.yaml'),
    );
    await bake({ store, spec: config.images.hello! });
    const result = await plane.deploy(config.services.web!, 'hello', 'test');
    assert.equal(result.outcome, 'live', result.reason);
    const instances = async (): Promise<InstanceSnapshot[]> => ((await plane.status())[0]!.instances as InstanceSnapshot[]);
    assert.deepEqual((await instances()).map((i) => i.drift), [[], [], []], 'a fresh fleet has no drift');

    const [execd, stopped, removed] = [...result.started].sort();
    await docker('exec', execd!, '/bin/sh', '-c', 'echo changed > /tmp/note');
    await docker('stop', '-t', '1', stopped!);
    await docker('rm', '-f', removed!);

    await waitFor('status to show all three changes', async () => {
      const seen = new Map((await instances()).map((i) => [i.id, i]));
      return Boolean(seen.get(execd!)?.drift.length && seen.get(stopped!)?.state === 'exited' && seen.get(removed!)?.state === 'missing');
    });
    const seen = new Map((await instances()).map((i) => [i.id, i]));
    assert.match(seen.get(execd!)!.drift.join('\n'), /docker exec: \/bin\/sh -c echo changed > \/tmp\/note/);
    assert.equal(seen.get(execd!)!.state, 'running');
    assert.equal(seen.get(stopped!)!.health, 'crashed');
    assert.match(seen.get(stopped!)!.drift.join('\n'), /signalled \(docker stop\/kill\): signal 15/);
    assert.match(seen.get(removed!)!.drift.join('\n'), /removed outside imago/);

    // A control plane that cannot reach the service's provider still starts, and says which service is down.
    const degraded = new ControlPlane(store, Providers.of(new ProcessProvider(store)));
    await degraded.start();
    assert.match(degraded.unavailable.get('web') ?? '', /provider 'docker' is not available here/);
    const [entry] = await degraded.status();
    assert.deepEqual([entry!.service, entry!.instances], ['web', []]);
    assert.match(String(entry!.error), /not available here/);
    await degraded.close();
  });
});

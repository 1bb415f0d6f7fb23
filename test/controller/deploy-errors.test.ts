import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bake } from '../../src/bake/baker.js';
import { normaliseConfig } from '../../src/config/normalise.js';
import { ProviderError } from '../../src/errors.js';
import type { Digest } from '../../src/oci/digest.js';
import { ProcessProvider } from '../../src/providers/process/process-provider.js';
import type { InstanceSpec, Provider } from '../../src/providers/provider.js';
import { listDeploys } from '../../src/state/deploys.js';
import { listReleases } from '../../src/state/releases.js';
import { Providers } from '../../src/providers/registry.js';
import { ControlPlane } from '../../src/server/control-plane.js';
import { stopRoutersIn } from '../../src/router/data-plane.js';
import { ImageStore } from '../../src/store/image-store.js';
import { REPO } from '../support/cli.js';
import { serviceStatus } from '../support/plane.js';

/** A process provider whose create fails, after `okStarts` good starts, for one digest (as a taken port or a dead engine would). */
class FailingProvider extends ProcessProvider {
  starts = 0;
  constructor(
    store: ImageStore,
    private readonly bad: () => Digest | undefined,
    private readonly okStarts: number,
  ) {
    super(store);
  }
  override async create(spec: InstanceSpec) {
    if (spec.digest === this.bad() && this.starts++ >= this.okStarts) throw new ProviderError(`failed to start instance '${spec.id}': the engine answered 500: port is already allocated`);
    return super.create(spec);
  }
}

describe('a deploy whose provider fails', () => {
  let home: string;
  let store: ImageStore;
  const digests: Digest[] = [];
  let bad: Digest | undefined;
  let plane: ControlPlane;
  let provider: Provider;

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'imago-deploy-errors-'));
    store = await ImageStore.open(home);
    for (const version of ['1', '2']) {
      const config = normaliseConfig(
        { images: { hello: { context: join(REPO, 'examples', 'hello'), from: { host: ['node'] }, copy: [{ src: 'app/', dest: '/app' }], env: { APP_VERSION: version }, workdir: '/app', entrypoint: ['/usr/bin/node'], cmd: ['server.js'] } } },
        join(REPO, 'examples', 'hello', 'imago.yaml'),
      );
      digests.push((await bake({ store, spec: config.images.hello! })).digest);
    }
    provider = new FailingProvider(store, () => bad, 1);
    plane = new ControlPlane(store, Providers.of(provider));
    await plane.start();
  });

  after(async () => {
    await plane.close({ stopRouters: true });
    await stopRoutersIn(store.home); // a test that failed between a close and a start left one
    for (const instance of await provider.list()) await provider.destroy(instance.id, { graceMs: 0 });
    store.close();
    await rm(home, { recursive: true, force: true });
  });

  const service = (name: string) =>
    normaliseConfig(
      { services: { [name]: { image: 'hello', replicas: 3, health: { http: '/healthz', interval: '50ms', startPeriod: '10s' }, strategy: { type: 'rolling', maxSurge: 3 }, stopGrace: '2s', drainTimeout: '1s' } } },
      join(REPO, 'examples', 'hello', 'imago.yaml'),
    ).services[name]!;

  it('fails with the provider\'s reason, keeps the live release serving, and leaves no new instance behind', async () => {
    assert.equal((await plane.deploy(service('web'), digests[0]!, 'test')).outcome, 'live');
    bad = digests[1];
    const result = await plane.deploy(service('web'), digests[1]!, 'test');
    assert.equal(result.outcome, 'failed');
    assert.match(result.reason ?? '', /^the deploy stopped: failed to start instance '.*': the engine answered 500: port is already allocated$/);
    const [failed] = listReleases(store.db, 'web');
    assert.deepEqual([failed!.status, failed!.reason], ['failed', result.reason]);
    assert.equal(listDeploys(store.db, 'web')[0]!.state, 'failed');
    const running = await provider.list({ 'imago.service': 'web' });
    assert.equal(running.length, 3);
    assert.ok(running.every((i) => i.digest === digests[0]), 'only v1 instances run');
    assert.equal(((await (await fetch((await serviceStatus(plane, 'web')).url)).json()) as { version: string }).version, '1');
  });

  it('on a first deploy, stops the instances it did start', async () => {
    bad = digests[1];
    (provider as FailingProvider).starts = 0; // one good start, then failures
    const result = await plane.deploy(service('fresh'), digests[1]!, 'test');
    assert.equal(result.outcome, 'failed');
    assert.equal((provider as FailingProvider).starts, 3, 'one instance started before the others failed');
    assert.deepEqual(await provider.list({ 'imago.service': 'fresh' }), []);
  });
});

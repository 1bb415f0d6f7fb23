import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bake } from '../../src/bake/baker.js';
import { normaliseConfig } from '../../src/config/normalise.js';
import type { ImageSpec, ServiceSpec } from '../../src/config/types.js';
import type { Digest } from '../../src/oci/digest.js';
import { Providers } from '../../src/providers/registry.js';
import { ControlPlane } from '../../src/server/control-plane.js';
import { verifyLedger } from '../../src/state/ledger.js';
import { getDeploy, listDeploys } from '../../src/state/deploys.js';
import { listReleases } from '../../src/state/releases.js';
import { stopRoutersIn } from '../../src/router/data-plane.js';
import { ImageStore } from '../../src/store/image-store.js';
import { REPO } from '../support/cli.js';
import { serviceStatus } from '../support/plane.js';
import { PROVIDERS } from '../support/providers.js';

/** examples/hello's image with another APP_VERSION (and, for a broken one, a health path that fails). */
function helloSpec(base: ImageSpec, version: string): ImageSpec {
  return { ...base, env: base.env.map(([k, v]) => [k, k === 'APP_VERSION' ? version : v] as [string, string]) };
}

for (const { name: providerName, make } of PROVIDERS) describe(`deploy, roll back and reject a broken release on the ${providerName} provider`, () => {
  let home: string;
  let store: ImageStore;
  let plane: ControlPlane | undefined;
  const digests: Record<string, Digest> = {};

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'imago-deploy-'));
    store = await ImageStore.open(home);
    const config = normaliseConfig(
      {
        images: {
          hello: {
            context: join(REPO, 'examples', 'hello'),
            from: { host: ['node', 'busybox'] },
            copy: [{ src: 'app/', dest: '/app' }],
            env: { APP_VERSION: '1' },
            workdir: '/app',
            entrypoint: ['/usr/bin/node'],
            cmd: ['server.js'],
            user: '1000:1000',
          },
        },
      },
      join(REPO, 'examples', 'hello', 'imago.yaml'),
    );
    const base = config.images.hello!;
    for (const v of ['1', '2', '3']) digests[v] = (await bake({ store, spec: helloSpec(base, v) })).digest;
    digests.broken = (await bake({ store, spec: { ...helloSpec(base, '4'), cmd: ['-e', 'setTimeout(() => process.exit(1), 200)'] } })).digest;
  });

  after(async () => {
    await plane?.close({ stopRouters: true });
    await stopRoutersIn(store.home); // a test that failed between a close and a start left one
    const provider = make(store);
    for (const instance of await provider.list()) await provider.destroy(instance.id, { graceMs: 0 });
    await provider.close();
    store.close();
    await rm(home, { recursive: true, force: true });
  });

  const service = (strategy: ServiceSpec['strategy']): ServiceSpec => ({
    name: 'hello',
    image: 'hello',
    replicas: 3,
    port: undefined,
    listen: undefined,
    protocol: 'http',
    keepPrevious: 0,
    // A start period: node takes a moment to listen, and refused probes then must not count.
    health: { check: { kind: 'http', path: '/healthz' }, interval: 50, timeout: 1000, startPeriod: 10_000, startInterval: 50, healthyThreshold: 1, unhealthyThreshold: 2 },
    strategy,
    env: [],
    volumes: {},
    stopGrace: 2_000,
    drainTimeout: 2_000,
    deployTimeout: 15_000,
    resources: { memory: 256 * 1024 ** 2, pids: 256 },
    provider: providerName,
    maxAge: undefined,
    maxAgeJitter: 0.1,
    drift: 'replace',
    backoff: { initial: 1000, max: 300_000, reset: 600_000 },
    secrets: [],
  });

  it('v1 → v2 (rolling) → v3 (blue-green) → v1 (rollback) with zero failed requests; a broken v4 is rejected', async () => {
    const rolling = service({ kind: 'rolling', maxSurge: { kind: 'count', value: 1 }, maxUnavailable: { kind: 'count', value: 0 } });
    plane = new ControlPlane(store, Providers.of(make(store)), 'dev');
    await plane.start();
    const first = await plane.deploy(rolling, digests['1']!, 'test');
    assert.equal(first.outcome, 'live', first.reason);
    assert.equal(first.started.length, 3);
    const url = (await serviceStatus(plane, 'hello')).url;

    // A client sends requests through the router without pause for the rest of the test.
    let stop = false;
    let failed = 0;
    const failures: string[] = [];
    const versions: string[] = [];
    const client = async () => {
      while (!stop) {
        try {
          const res = await fetch(url);
          if (res.status !== 200) {
            failed++;
            failures.push(`${res.status} ${await res.clone().text()}`);
          }
          const { version } = (await res.json()) as { version: string };
          if (versions.at(-1) !== version) versions.push(version);
        } catch (error) {
          failed++;
          failures.push(String((error as Error).cause ?? error));
          await new Promise((resolve) => setImmediate(resolve)); // never spin without yielding
        }
      }
    };
    const clients = [client(), client(), client()];
    try {

    const second = await plane.deploy(rolling, digests['2']!, 'test');
    assert.equal(second.outcome, 'live', second.reason);
    assert.ok(second.started.every((id) => !first.started.includes(id)), 'every deploy yields new instance ids');

    const third = await plane.deploy(service({ kind: 'blue-green' }), digests['3']!, 'test');
    assert.equal(third.outcome, 'live', third.reason);

    const back = await plane.rollback('hello', 1, 'test');
    assert.equal(back.outcome, 'live', back.reason);

    const broken = await plane.deploy(service({ kind: 'blue-green' }), digests.broken!, 'test');
    assert.equal(broken.outcome, 'failed');
    assert.match(broken.reason ?? '', /exited|failed the health check|not healthy/);
    const answer = (await (await fetch(url)).json()) as { version: string };
    assert.equal(answer.version, '1', 'v1 keeps serving after the broken release is rejected');

    } finally {
      stop = true;
      await Promise.all(clients);
    }
    assert.equal(failed, 0, `zero failed requests, got: ${failures.slice(0, 5).join(' | ')}`);
    assert.deepEqual(versions.filter((v, i) => versions.indexOf(v) === i), ['1', '2', '3'].slice(0, new Set(versions).size));
    const statuses = listReleases(store.db, 'hello').map((r) => `${r.version}:${r.status}`);
    assert.deepEqual(statuses, ['5:failed', '4:live', '3:rolled-back', '2:superseded', '1:superseded']);
    const failedDeploy = getDeploy(store.db, listDeploys(store.db, 'hello')[0]!.id)!;
    assert.equal(failedDeploy.state, 'failed');
    assert.ok(JSON.stringify(failedDeploy.transcript ?? {}).length > 2, 'the failed deploy keeps a transcript');
    assert.deepEqual(verifyLedger(store.db).ok, true);
  });
});

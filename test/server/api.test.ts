import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bake } from '../../src/bake/baker.js';
import { normaliseConfig } from '../../src/config/normalise.js';
import { ProcessProvider } from '../../src/providers/process/process-provider.js';
import { Providers } from '../../src/providers/registry.js';
import { createApi, listen } from '../../src/server/api.js';
import { ControlPlane } from '../../src/server/control-plane.js';
import { ensureToken, tokenPath } from '../../src/server/token.js';
import { stopRoutersIn } from '../../src/router/data-plane.js';
import { revokeDigest } from '../../src/state/revocations.js';
import { ImageStore } from '../../src/store/image-store.js';
import { REPO } from '../support/cli.js';

describe('control plane API', () => {
  let home: string;
  let store: ImageStore;
  let plane: ControlPlane;
  let base: string;
  let token: string;
  let server: ReturnType<typeof createApi>;
  /** Service `web` as written in a config file: what the CLI sends. */
  const web = { image: 'hello', replicas: 2, health: { http: '/healthz', interval: '50ms', startPeriod: '10s' }, drainTimeout: '2s', stopGrace: '2s' };

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'imago-api-'));
    store = await ImageStore.open(home);
    const config = normaliseConfig(
      {
        images: { hello: { context: join(REPO, 'examples', 'hello'), from: { host: ['node'] }, copy: [{ src: 'app/', dest: '/app' }], env: { APP_VERSION: '1' }, workdir: '/app', entrypoint: ['/usr/bin/node'], cmd: ['server.js'] } },
      },
      join(REPO, 'examples', 'hello', 'imago.yaml'),
    );
    await bake({ store, spec: config.images.hello! });
    await bake({ store, spec: { ...config.images.hello!, env: [['APP_VERSION', '2']] } });
    plane = new ControlPlane(store, Providers.of(new ProcessProvider(store)));
    token = await ensureToken(home);
    server = createApi(plane, token);
    const address = await listen(server, '127.0.0.1', 0);
    base = `http://127.0.0.1:${address.port}`;
  });

  after(async () => {
    await new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
    await plane.close({ stopRouters: true });
    await stopRoutersIn(store.home); // a test that failed between a close and a start left one
    const provider = new ProcessProvider(store);
    for (const instance of await provider.list()) await provider.destroy(instance.id, { graceMs: 0 });
    store.close();
    await rm(home, { recursive: true, force: true });
  });

  const call = async (method: string, path: string, body?: unknown, auth = true, actor = 'tester') => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { ...(auth ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json', 'x-imago-actor': actor },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> & Array<Record<string, unknown>> };
  };

  it('keeps its token in a 0600 file and refuses requests without it', async () => {
    assert.equal((await stat(tokenPath(home))).mode & 0o777, 0o600);
    assert.equal(await ensureToken(home), token, 'the same token on the next start');
    assert.equal((await call('GET', '/v1/ping', undefined, false)).status, 200);
    const refused = await call('GET', '/v1/status', undefined, false);
    assert.equal(refused.status, 401);
    assert.match(String(refused.body.error), /missing, wrong or revoked API token/);
  });

  it('refuses bad input with a clear error and changes nothing', async () => {
    const unknown = await call('POST', '/v1/services/web/deploy', { service: web, image: 'nope:9' });
    assert.equal(unknown.status, 404);
    assert.match(String(unknown.body.error), /image 'nope:9' not found/);
    for (const replicas of [-1, 100000]) {
      const bad = await call('POST', '/v1/services/web/deploy', { service: { ...web, replicas }, image: 'hello:1' });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error, `services.web.replicas: expected a whole number of instances from 0 to 1000, got ${replicas}`);
    }
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const taken = (blocker.address() as AddressInfo).port;
    const inUse = await call('POST', '/v1/services/busy/deploy', { service: { ...web, listen: `127.0.0.1:${taken}` }, image: 'hello:1' });
    blocker.close();
    assert.equal(inUse.status, 409);
    assert.equal(inUse.body.error, `failed to listen on 127.0.0.1:${taken} for service 'busy': the port is in use`);
    assert.deepEqual((await call('GET', '/v1/services/busy/history')).body, [], 'nothing recorded');
    const normalised = await call('POST', '/v1/services/web/deploy', { service: { ...web, name: 'web', strategy: { kind: 'rolling' } }, image: 'hello:1' });
    assert.equal(normalised.status, 400, 'a normalised spec is not what the API takes');
    assert.equal(normalised.body.error, [
      '3 problems:',
      '  services.web.strategy.type: expected "rolling" or "blue-green", got nothing',
      '  services.web.strategy.kind: unknown key (expected one of: type, maxSurge, maxUnavailable)',
      '  services.web.name: unknown key (expected one of: image, replicas, port, listen, protocol, keepPrevious, health, strategy, env, volumes, stopGrace, drainTimeout, deployTimeout, resources, provider, maxAge, maxAgeJitter, drift, backoff, secrets)',
    ].join('\n'));
    const noRelease = await call('POST', '/v1/services/web/rollback', {});
    assert.equal(noRelease.status, 404);
    assert.deepEqual((await call('GET', '/v1/services/web/history')).body, []);
  });

  it('plans, deploys, reports status and history, and rolls back', async () => {
    const plan = await call('POST', '/v1/services/web/plan', { service: web, image: 'hello:1' });
    assert.equal(plan.status, 200);
    assert.equal((plan.body as unknown as { plan: { steps: unknown[] } }).plan.steps.length, 3, 'a first deploy starts all at once');
    const one = await call('POST', '/v1/services/web/deploy', { service: web, image: 'hello:1' });
    assert.equal(one.status, 200, JSON.stringify(one.body));
    assert.equal(one.body.outcome, 'live');
    const two = await call('POST', '/v1/services/web/deploy', { service: web, image: 'hello:2' });
    assert.equal(two.body.outcome, 'live');
    const [status] = (await call('GET', '/v1/status')).body;
    assert.equal(status!.service, 'web');
    const instances = status!.instances as Array<{ health: string; routed: boolean }>;
    assert.equal(instances.length, 2);
    assert.ok(instances.every((i) => i.health === 'healthy' && i.routed));
    const answer = (await (await fetch(String(status!.url))).json()) as { version: string };
    assert.equal(answer.version, '2');
    const back = await call('POST', '/v1/services/web/rollback', {}, true, 'oncall');
    assert.equal(back.body.outcome, 'live');
    assert.equal(((await (await fetch(String(status!.url))).json()) as { version: string }).version, '1');
    const history = (await call('GET', '/v1/services/web/history')).body.map((r) => `${r.version}:${r.status}:${r.createdBy}`);
    assert.deepEqual(history, ['3:live:oncall', '2:rolled-back:tester', '1:superseded:tester']);

    const moved = await call('POST', '/v1/services/web/deploy', { service: { ...web, provider: 'docker' }, image: 'hello:2' });
    assert.equal(moved.status, 409);
    assert.match(String(moved.body.error), /service 'web' runs on the process provider, and a deploy cannot move it to docker/);
    assert.equal((await call('GET', '/v1/services/web/history')).body.length, 3, 'nothing recorded');
  });

  it('refuses to deploy or roll back to a revoked image, saying who revoked it and why, and flags what still runs one', async () => {
    // Release 3 (live) runs hello:1; release 2 ran hello:2.
    const two = store.resolve('hello:2');
    revokeDigest(store.db, { digest: two, reason: 'ships a vulnerable openssl', actor: 'security@build' });
    const deploy = await call('POST', '/v1/services/web/deploy', { service: web, image: 'hello:2' });
    assert.equal(deploy.status, 409);
    assert.match(String(deploy.body.error), new RegExp(`cannot deploy web: image ${two} was revoked by security@build at \\S+: ships a vulnerable openssl`));
    const back = await call('POST', '/v1/services/web/rollback', { to: 2 });
    assert.equal(back.status, 409);
    assert.match(String(back.body.error), /cannot roll web back to release 2: image sha256:\w+ was revoked/);
    assert.equal((await call('GET', '/v1/services/web/history')).body.length, 3, 'nothing recorded');
    const [before] = (await call('GET', '/v1/status')).body;
    assert.equal((before!.live as { revoked: unknown }).revoked, null);

    revokeDigest(store.db, { digest: store.resolve('hello:1'), reason: 'built from a bad base', actor: 'security@build' });
    const [after] = (await call('GET', '/v1/status')).body;
    assert.equal((after!.live as { revoked: unknown }).revoked, 'built from a bad base (by security@build)');
    const instances = after!.instances as Array<{ revoked: unknown }>;
    assert.ok(instances.length > 0 && instances.every((i) => i.revoked === 'built from a bad base (by security@build)'), 'every instance of the live release is flagged');
    assert.ok(instances.length === 2, 'they run on until replaced');
  });
});

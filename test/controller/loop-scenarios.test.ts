/**
 * The control loop, end to end but in memory: the real ControlPlane, loops, reconcile,
 * executor, health watchers and SQLite state, on the fake provider and a fake router, in fake
 * time. Minutes of a fleet's life run in a second or two.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { bake } from '../../src/bake/baker.js';
import { normaliseConfig } from '../../src/config/normalise.js';
import type { ServiceSpec } from '../../src/config/types.js';
import { VirtualPorts } from '../../src/controller/ports.js';
import type { Digest } from '../../src/oci/digest.js';
import { FakeClock } from '../../src/providers/fake/fake-clock.js';
import { FakeProvider, FakeWorld } from '../../src/providers/fake/fake-provider.js';
import { Providers } from '../../src/providers/registry.js';
import { FakeRouter } from '../../src/router/fake-router.js';
import { ControlPlane } from '../../src/server/control-plane.js';
import { listDrift } from '../../src/state/drift.js';
import { listInstances } from '../../src/state/instances.js';
import { listEvents, verifyLedger } from '../../src/state/ledger.js';
import { listDeploys, runningDeploy } from '../../src/state/deploys.js';
import { listReleases } from '../../src/state/releases.js';
import { getService } from '../../src/state/services.js';
import { ImageStore } from '../../src/store/image-store.js';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { ensureSigningKey } from '../../src/sign/keys.js';
import { IN_TOTO_PAYLOAD_TYPE, signEnvelope } from '../../src/sign/dsse.js';
import { provenanceStatement } from '../../src/sign/provenance.js';
import { storeEnvelope } from '../../src/sign/signatures.js';
import { makeImage } from '../fixtures/make-image.js';
import { imageSpec } from '../support/spec.js';
import { tempDir } from '../support/temp.js';

interface Scene {
  clock: FakeClock;
  world: FakeWorld;
  fake: FakeProvider;
  store: ImageStore;
  plane: ControlPlane;
  routers: Map<string, FakeRouter>;
  digests: Digest[];
  /** Moves fake time on until `work` settles (or fails after `limitMs` of fake time). */
  drive<T>(work: Promise<T>, limitMs?: number): Promise<T>;
  /** Moves fake time on until `check` holds; returns how long that took. */
  until(what: string, check: () => boolean | Promise<boolean>, limitMs?: number): Promise<number>;
  /** A fresh control plane on the same world and state (a restart). */
  restart(): Promise<ControlPlane>;
  status(): Promise<{ instances: Array<{ id: string; release: number; health: string; routed: boolean; bucket: string }>; degraded: { reason: string } | null; desired: { replicas: number } }>;
  running(): string[];
}

/** A service spec as a config file would give it. */
function spec(raw: Record<string, unknown> = {}): ServiceSpec {
  return normaliseConfig({ services: { web: { image: 'app', replicas: 3, health: { http: '/healthz', interval: '200ms', unhealthyThreshold: 2 }, stopGrace: '1s', drainTimeout: '2s', deployTimeout: '30s', ...raw } } }, '/fake/imago.yaml').services.web!;
}

async function scene(): Promise<Scene> {
  const home = await tempDir('imago-loop-');
  const store = await ImageStore.open(home);
  const clock = new FakeClock();
  const world = new FakeWorld(clock);
  const fake = new FakeProvider({ world });
  const routers = new Map<string, FakeRouter>();
  const digests: Digest[] = [];
  for (const v of ['1', '2']) digests.push((await bake({ store, spec: imageSpec({ name: 'app', context: home, entrypoint: ['/app'], env: [['V', v]] }) })).digest);
  const planes: ControlPlane[] = [];
  const make = async () => {
    const plane = new ControlPlane(store, Providers.standIn({ process: fake }), {
      env: 'test',
      clock,
      probe: fake.probe,
      ports: new VirtualPorts(),
      router: (service) => {
        const router = new FakeRouter(service);
        routers.set(service, router);
        return router;
      },
    });
    await plane.start();
    // Image configs are read from disk once; read them now, outside fake time.
    for (const digest of digests) await plane.configs.get(digest);
    planes.push(plane);
    return plane;
  };
  const s: Scene = {
    clock,
    world,
    fake,
    store,
    plane: await make(),
    routers,
    digests,
    async drive(work, limitMs = 120_000) {
      let settled = false;
      work.then(
        () => (settled = true),
        () => (settled = true),
      );
      await clock.until('the work', () => settled, limitMs, 20);
      return work;
    },
    until: (what, check, limitMs = 120_000) => clock.until(what, check, limitMs, 20),
    async restart() {
      await s.plane.close();
      s.plane = await make();
      return s.plane;
    },
    async status() {
      return (await s.plane.status()).find((e) => e.service === 'web') as never;
    },
    running: () => [...world.instances.values()].filter((i) => i.state === 'running').map((i) => i.spec.id).sort(),
  };
  after(async () => {
    for (const plane of planes) await plane.close();
    store.close();
  });
  return s;
}

/** How many instances were routed just before `id` was unrouted (from the router's journal). */
function routedWhenUnrouted(router: FakeRouter, id: string): number {
  const routedNow = new Set<string>();
  for (const line of router.journal) {
    const [verb, which] = line.split(' ') as [string, string];
    if (verb === 'unroute' && which === id) return routedNow.size;
    if (verb === 'route') routedNow.add(which);
    else routedNow.delete(which);
  }
  return -1;
}

/** The routed ids of the service's fake router. */
const routed = (s: Scene) => s.routers.get('web')!.routed().sort();

describe('the control loop on the fake provider, in fake time', () => {
  it('deploys, and a crash while no deploy runs is replaced within a second, surge-first', async () => {
    const s = await scene();
    const first = await s.drive(s.plane.deploy(spec(), s.digests[0]!, 'alice'));
    assert.equal(first.outcome, 'live', first.reason);
    assert.deepEqual(routed(s), [...first.started].sort());
    const victim = first.started[0]!;
    const crashedAt = s.clock.now();
    s.fake.crash(victim, 137);
    const replacedIn = await s.until('a replacement started', () => s.running().length === 3 && !s.running().includes(victim), 5000);
    assert.ok(replacedIn <= 1000, `replacement started ${replacedIn} ms after the crash`);
    await s.until('it is routed', () => routed(s).length === 3 && !routed(s).includes(victim), 5000);
    const [row] = listInstances(s.store.db, 'web').filter((i) => i.id === victim);
    assert.deepEqual([row!.state, row!.reason, row!.streak, row!.awaiting], ['crashed', 'killed by SIGKILL (exit 137)', 1, false]);
    const replacement = listInstances(s.store.db, 'web').find((i) => i.replaces === victim)!;
    assert.equal(replacement.attempt, 1);
    assert.ok(Date.parse(replacement.createdAt) - crashedAt <= 1000);
    assert.equal(verifyLedger(s.store.db).ok, true);
  });

  it('an instance that stops answering is taken out of the router at once and replaced; one lost is replaced too', async () => {
    const s = await scene();
    const { started } = await s.drive(s.plane.deploy(spec(), s.digests[0]!, 'alice'));
    s.fake.hang(started[1]!);
    await s.until('the hung one unrouted', () => !routed(s).includes(started[1]!), 5000);
    await s.until('back to 3 routed', () => routed(s).length === 3, 10_000);
    s.fake.lose(started[2]!);
    await s.until('the lost one replaced', () => routed(s).length === 3 && !routed(s).includes(started[2]!), 10_000);
    const states = Object.fromEntries(listInstances(s.store.db, 'web').map((i) => [i.id, i.state]));
    assert.equal(states[started[1]!], 'failed');
    assert.equal(states[started[2]!], 'lost');
  });

  it('every instance killed: all places filled at once, back at full capacity, and the drill reports it', async () => {
    const s = await scene();
    await s.drive(s.plane.deploy(spec({ replicas: 5 }), s.digests[0]!, 'alice'));
    const drill = await s.drive(s.plane.drill('web', 'all', 'bob'));
    assert.equal(drill.killed.length, 5);
    assert.ok(drill.recoveredMs < 2000, `recovered in ${drill.recoveredMs} ms`);
    assert.equal(routed(s).length, 5);
    assert.ok(routed(s).every((id) => !drill.killed.includes(id)));
    assert.deepEqual(listEvents(s.store.db, { service: 'web' }).filter((e) => e.kind.startsWith('drill.')).map((e) => `${e.kind}:${e.actor}`), ['drill.started:bob', 'drill.finished:bob']);
  });

  it('an image that keeps dying backs off, is degraded with the reason, and its starts stay bounded over 60 s', async () => {
    const s = await scene();
    await s.drive(s.plane.deploy(spec(), s.digests[0]!, 'alice'));
    s.world.next.exitAfterMs = 1500; // every replacement dies 1.5 s after its start
    s.world.next.exitCode = 3;
    for (const id of s.running()) s.fake.crash(id, 3);
    const startsBefore = s.world.journal.filter((line) => line.startsWith('create')).length;
    await s.clock.advance(60_000);
    const starts = s.world.journal.filter((line) => line.startsWith('create')).length - startsBefore;
    // Each of 3 places: starts after 0, 1, 2, 4, 8, 16, 32 s of back-off (+1.5 s of life each): at most 7 in 60 s.
    assert.ok(starts <= 3 * 7, `${starts} starts in 60 s`);
    assert.ok(starts >= 3 * 5, `${starts} starts in 60 s: it keeps trying`);
    const status = await s.status();
    assert.match(status.degraded?.reason ?? '', /^crash loop: \d+ failures in a row; the last: exit code 3/);
    // A new deploy clears it: its release has no failures.
    s.world.next.exitAfterMs = undefined;
    const fixed = await s.drive(s.plane.deploy(spec(), s.digests[1]!, 'alice'));
    assert.equal(fixed.outcome, 'live', fixed.reason);
    assert.equal((await s.status()).degraded, null);
  });

  it('scale 3 → 10 → 2 touches no instance it keeps; a change of replicas alone in a deploy is a scale', async () => {
    const s = await scene();
    const { started } = await s.drive(s.plane.deploy(spec(), s.digests[0]!, 'alice'));
    const journal = () => s.world.journal.filter((line) => line.startsWith('destroy') || line.startsWith('create'));
    const before = journal().length;
    await s.drive(s.plane.scale('web', 10, 'carol'));
    assert.equal(routed(s).length, 10);
    assert.ok(started.every((id) => routed(s).includes(id)), 'the first three are still there');
    assert.ok(journal().slice(before).every((line) => line.startsWith('create')), 'scaling up only creates');
    const ten = routed(s);
    const result = await s.drive(s.plane.deploy(spec({ replicas: 2 }), s.digests[0]!, 'carol'));
    assert.equal(result.outcome, 'scaled');
    assert.deepEqual(result.scaled, { from: 10, to: 2 });
    assert.equal(routed(s).length, 2);
    assert.ok(routed(s).every((id) => ten.includes(id)), 'the two kept are two of the ten');
    assert.deepEqual(listReleases(s.store.db, 'web').map((r) => r.version), [1], 'no new release');
    assert.deepEqual(listEvents(s.store.db, { service: 'web' }).filter((e) => e.kind === 'service.scaled').map((e) => [e.actor, e.data.from, e.data.to]), [['carol', 3, 10], ['carol', 10, 2]]);
    const same = await s.drive(s.plane.deploy(spec({ replicas: 2 }), s.digests[0]!, 'carol'));
    assert.equal(same.outcome, 'unchanged');
  });

  it('drift: replaced surge-first under `replace`, only reported and recorded under `report`', async () => {
    const s = await scene();
    const { started } = await s.drive(s.plane.deploy(spec(), s.digests[0]!, 'alice'));
    s.fake.tamper(started[0]!, 'docker exec: /bin/sh');
    await s.until('the drifted one replaced', () => !s.running().includes(started[0]!) && routed(s).length === 3, 10_000);
    assert.equal(routedWhenUnrouted(s.routers.get('web')!, started[0]!), 4, 'its replacement was routed before it was unrouted');
    assert.deepEqual(listDrift(s.store.db, { service: 'web' }).map((f) => [f.instance, f.finding, f.action]), [[started[0], 'docker exec: /bin/sh', 'replace']]);

    const report = await s.drive(s.plane.deploy(spec({ drift: 'report' }), s.digests[0]!, 'alice'));
    const [kept] = report.started;
    s.fake.tamper(kept!, 'nsenter: pid 42');
    await s.clock.advance(10_000);
    assert.ok(s.running().includes(kept!), 'kept under report');
    assert.ok(routed(s).includes(kept!), 'and still routed');
    assert.equal(listDrift(s.store.db, { service: 'web' }).at(-1)!.action, 'report');
  });

  it('phoenix: every instance past its max age is recycled, surge-first, never below the fleet', async () => {
    const s = await scene();
    const { started } = await s.drive(s.plane.deploy(spec({ maxAge: '5s' }), s.digests[0]!, 'alice'));
    let minRouted = 3;
    const router = s.routers.get('web')!;
    const watch = setInterval(() => (minRouted = Math.min(minRouted, router.routed().length)), 0);
    try {
      await s.until('every first instance recycled', () => started.every((id) => !s.running().includes(id)), 30_000);
    } finally {
      clearInterval(watch);
    }
    await s.until('three routed', () => routed(s).length === 3, 10_000);
    assert.equal(minRouted, 3, 'never fewer than 3 routed');
    const status = await s.status();
    assert.ok(status.instances.every((i) => i.bucket === 'healthy'));
  });

  it('two deploys at once: the second gets 409, and the running one starts its instances with its own spec', async () => {
    const s = await scene();
    await s.drive(s.plane.deploy(spec(), s.digests[0]!, 'alice'));
    s.world.next.startMs = 3000; // a slow start: the first deploy is still running when the second comes
    const slowHealth = { http: '/healthz', interval: '200ms', startPeriod: '10s' };
    const first = s.plane.deploy(spec({ env: { WHO: 'alice' }, health: slowHealth }), s.digests[1]!, 'alice');
    await s.clock.advance(100);
    await assert.rejects(s.plane.deploy(spec({ env: { WHO: 'mallory' }, replicas: 1 }), s.digests[1]!, 'mallory'), /lock 'service:web' is held by 'alice/);
    const result = await s.drive(first);
    assert.equal(result.outcome, 'live', result.reason);
    for (const id of result.started) assert.deepEqual(s.world.instances.get(id)!.spec.env, [['WHO', 'alice']], id);
    assert.equal(routed(s).length, 3);
  });

  it('a restarted control plane re-adopts the running instances and replaces only the one that died meanwhile', async () => {
    const s = await scene();
    const { started } = await s.drive(s.plane.deploy(spec(), s.digests[0]!, 'alice'));
    await s.clock.advance(10 * 60_000); // up far longer than any gate timeout: adoption must not mistake that for a slow gate
    await s.plane.close();
    s.fake.crash(started[1]!);
    await s.restart();
    await s.until('three routed again', () => routed(s).length === 3, 10_000);
    assert.deepEqual(routed(s).filter((id) => started.includes(id)), [started[0]!, started[2]!].sort(), 'the two alive were adopted');
    assert.equal(s.world.journal.filter((l) => l.startsWith('destroy')).length, 1, 'only the dead one was removed');
    await s.clock.advance(5000);
    assert.equal(s.world.journal.filter((l) => l.startsWith('destroy')).length, 1, 'and nothing else after');
  });

  it('a deploy that went live just before the control plane died is finished as live at the next start, not aborted', async () => {
    const s = await scene();
    await s.drive(s.plane.deploy(spec(), s.digests[0]!, 'alice'));
    const second = await s.drive(s.plane.deploy(spec(), s.digests[1]!, 'alice'));
    await s.plane.close();
    // As if the last control plane marked the release live and died before it finished the deploy.
    const db = s.store.db;
    const release = listReleases(db, 'web')[0]!;
    db.prepare(`INSERT INTO deploys (service, release_id, from_release_id, plan, state, started_at) VALUES ('web', ?, NULL, '{}', 'running', ?)`).run(release.id, new Date(s.clock.now()).toISOString());
    await s.restart();
    assert.deepEqual(listReleases(db, 'web').map((r) => `${r.version}:${r.status}`), ['2:live', '1:superseded']);
    assert.deepEqual(listDeploys(db, 'web').map((d) => d.state), ['succeeded', 'succeeded', 'succeeded']);
    await s.until('3 routed', () => routed(s).length === 3, 10_000);
    assert.deepEqual(routed(s), [...second.started].sort(), 'the live release serves on');
  });

  it('a deploy aborted by a restart goes back to the release and the replicas from before it', async () => {
    const s = await scene();
    await s.drive(s.plane.deploy(spec({ replicas: 2 }), s.digests[0]!, 'alice'));
    s.world.next.startMs = 60_000; // the new release never gets healthy before the "crash"
    const pending = s.plane.deploy(spec({ replicas: 4, health: { http: '/healthz', interval: '200ms', startPeriod: '120s' } }), s.digests[1]!, 'alice');
    await s.until('the deploy running', () => runningDeploy(s.store.db, 'web') !== undefined, 5000);
    await s.clock.advance(500);
    await s.plane.close();
    assert.equal((await pending).outcome, 'failed', 'its caller is answered when the control plane stops');
    s.world.next.startMs = 50;
    await s.restart();
    await s.until('back on release 1 with 2 instances', async () => routed(s).length === 2 && (await s.status()).instances.length === 2, 30_000);
    assert.deepEqual(listReleases(s.store.db, 'web').map((r) => `${r.version}:${r.status}`), ['2:failed', '1:live']);
    assert.equal(getService(s.store.db, 'web')!.replicas, 2);
  });

  it('a new release whose instances die fails its deploy; the release before serves on, untouched', async () => {
    const s = await scene();
    const { started } = await s.drive(s.plane.deploy(spec(), s.digests[0]!, 'alice'));
    s.world.next.exitAfterMs = 100;
    const broken = await s.drive(s.plane.deploy(spec(), s.digests[1]!, 'alice'));
    assert.equal(broken.outcome, 'failed');
    assert.match(broken.reason ?? '', /new instance\(s\) exited/);
    assert.deepEqual(routed(s), [...started].sort());
    assert.deepEqual(s.running(), [...started].sort());
    assert.deepEqual(listReleases(s.store.db, 'web').map((r) => `${r.version}:${r.status}`), ['2:failed', '1:live']);
  });

  it('a provider that cannot start replacements is retried with back-off, never in a spin', async () => {
    const s = await scene();
    await s.drive(s.plane.deploy(spec(), s.digests[0]!, 'alice'));
    s.world.next.failCreates = 1000;
    const victim = s.running()[0]!;
    s.fake.crash(victim);
    await s.clock.advance(30_000);
    const tries = 1000 - s.world.next.failCreates;
    assert.ok(tries >= 4 && tries <= 8, `${tries} tries in 30 s`);
    s.world.next.failCreates = 0;
    await s.until('back to 3', () => routed(s).length === 3, 120_000);
  });
  it('keepPrevious: the release before stays up unrouted for its window; a rollback inside it is a traffic flip to the same instances; after it they go', async () => {
    const s = await scene();
    const keep = spec({ keepPrevious: '30s' });
    const v1 = await s.drive(s.plane.deploy(keep, s.digests[0]!, 'alice'));
    const v2 = await s.drive(s.plane.deploy(keep, s.digests[1]!, 'alice'));
    assert.equal(v2.outcome, 'live', v2.reason);
    assert.deepEqual(routed(s), [...v2.started].sort());
    await s.clock.advance(5_000); // well past the drain timeout
    assert.deepEqual(s.running(), [...v1.started, ...v2.started].sort(), 'release 1 kept running');
    const kept = (await s.status()).instances.filter((i) => v1.started.includes(i.id));
    assert.deepEqual(kept.map((i) => [i.routed, i.bucket]), v1.started.map(() => [false, 'draining']));

    const creates = () => s.world.journal.filter((line) => line.startsWith('create')).length;
    const before = creates();
    const back = await s.drive(s.plane.rollback('web', undefined, 'bob'));
    assert.equal(back.outcome, 'live', back.reason);
    assert.deepEqual(routed(s), [...v1.started].sort(), 'the kept instances serve again');
    assert.equal(creates(), before, 'no instance was started');
    assert.equal(listEvents(s.store.db, { service: 'web' }).filter((e) => e.kind === 'instance.adopted').length, 3);
    await s.until('release 2 gone', () => s.running().length === 3, 30_000);
    assert.deepEqual(s.running(), [...v1.started].sort());

    // Outside a window nothing is kept: a deploy replaces, and 30 s later the release before is gone.
    const v4 = await s.drive(s.plane.deploy(keep, s.digests[1]!, 'alice'));
    assert.equal(v4.outcome, 'live', v4.reason);
    await s.clock.advance(10_000);
    assert.equal(s.running().length, 6, 'kept inside the window');
    await s.until('the window over, the kept ones stopped', () => s.running().length === 3, 40_000);
    assert.deepEqual(s.running(), [...v4.started].sort());
  });

  it('without keepPrevious the release before is drained and stopped at once', async () => {
    const s = await scene();
    await s.drive(s.plane.deploy(spec(), s.digests[0]!, 'alice'));
    const v2 = await s.drive(s.plane.deploy(spec(), s.digests[1]!, 'alice'));
    await s.until('only release 2 runs', () => s.running().length === 3, 10_000);
    assert.deepEqual(s.running(), [...v2.started].sort());
  });

  it('two environments of one service run apart and a restart adopts each its own; another home environment refuses to start', async () => {
    const s = await scene();
    const prod = { ...spec({ replicas: 2 }), name: s.plane.keyOf('web', 'prod') };
    assert.equal(prod.name, 'web@prod');
    const home = await s.drive(s.plane.deploy(spec(), s.digests[0]!, 'alice'));
    const inProd = await s.drive(s.plane.deploy(prod, s.digests[1]!, 'alice'));
    assert.deepEqual([home.outcome, inProd.outcome, home.release.version, inProd.release.version], ['live', 'live', 1, 1], 'releases are numbered per environment');
    const envOf = (id: string) => s.world.instances.get(id)!.spec.labels['imago.env'];
    assert.deepEqual([...new Set(home.started.map(envOf)), ...new Set(inProd.started.map(envOf))], ['test', 'prod']);
    assert.deepEqual(s.routers.get('web@prod')!.routed().sort(), [...inProd.started].sort());

    await s.restart();
    await s.until('both routed again', () => routed(s).length === 3 && s.routers.get('web@prod')!.routed().length === 2, 10_000);
    assert.deepEqual(routed(s), [...home.started].sort());
    assert.deepEqual(s.routers.get('web@prod')!.routed().sort(), [...inProd.started].sort());
    assert.equal(s.world.journal.filter((l) => l.startsWith('destroy')).length, 0, 'neither adopted the other\'s instances');

    // The state folder's home environment is 'test' (recorded at its first start): a plane that calls another home refuses.
    await s.plane.close();
    const other = new ControlPlane(s.store, Providers.standIn({ process: s.fake }), { env: 'prod', clock: s.clock, probe: s.fake.probe, router: (service) => new FakeRouter(service) });
    await assert.rejects(other.start(), /has the home environment 'test' \(recorded at its first start\), not 'prod': start imago server with --env test/);
    await s.restart();
    assert.equal((await s.status()).instances.length, 3);
  });

  it('an environment that requires signatures deploys what its key signed, and refuses an unsigned image, one signed by another key and a tampered one; nothing changes', async () => {
    const s = await scene();
    const prod = { ...spec(), name: s.plane.keyOf('web', 'prod') };
    const key = ensureSigningKey(s.store.home); // the scene's bakes signed with it
    const stranger = generateKeyPairSync('ed25519');
    const pem = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }) as string;
    const live = await s.drive(s.plane.deploy(prod, s.digests[0]!, 'alice', { policy: { minSoak: 0, keys: [pem(key.publicKey)] } }));
    assert.equal(live.outcome, 'live');
    await assert.rejects(
      s.plane.deploy(prod, s.digests[1]!, 'alice', { policy: { minSoak: 0, keys: [pem(stranger.publicKey)] } }),
      /cannot deploy web@prod: its environment requires a signature by one of 1 key\(s\), and image sha256:[0-9a-f]{64}: signed by key [0-9a-f]{16}, which is not among the 1 trusted key\(s\)/,
    );
    const plain = await makeImage(s.store, { name: 'plain', tag: '1', files: { 'app': 'x' } });
    await assert.rejects(s.plane.deploy(prod, plain.digest, 'alice', { policy: { minSoak: 0, keys: [pem(key.publicKey)] } }), /image sha256:[0-9a-f]{64} has no signature/);
    // A statement changed after a trusted key signed it.
    const statement = provenanceStatement({ name: 'plain', digest: plain.digest, spec: 'x', context: 'none', base: 'scratch', imagoVersion: 'test', startedOn: '', finishedOn: '' });
    const signed = signEnvelope(Buffer.from(JSON.stringify(statement)), IN_TOTO_PAYLOAD_TYPE, key.privateKey);
    await storeEnvelope(s.store, plain.digest, { ...signed, payload: Buffer.from(JSON.stringify({ ...statement, predicate: {} })).toString('base64') }, key.keyid);
    await assert.rejects(s.plane.deploy(prod, plain.digest, 'alice', { policy: { minSoak: 0, keys: [pem(key.publicKey)] } }), /the provenance or its signature was changed after signing/);
    // A client that is no admin, sending no policy, is held to the one an admin's deploy stored.
    await assert.rejects(s.plane.deploy(prod, plain.digest, 'ci', { admin: false }), /requires a signature by one of 1 key\(s\), and image .*changed after signing/);
    assert.deepEqual(listReleases(s.store.db, 'web@prod').map((r) => [r.version, r.status]), [[1, 'live']], 'no release for what was refused');
  });
});

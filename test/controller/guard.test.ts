/**
 * The guard on the real providers, with clients sending GET and POST requests through the
 * router without pause: crashes, kills of the whole fleet, drift, impostors, phoenix, crash
 * loops, restarts of the control plane, concurrent deploys and scaling.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bake } from '../../src/bake/baker.js';
import { normaliseConfig } from '../../src/config/normalise.js';
import type { ImageSpec, ServiceSpec } from '../../src/config/types.js';
import type { Digest } from '../../src/oci/digest.js';
import { imageRef } from '../../src/providers/docker/image-loader.js';
import { processStartTime } from '../../src/providers/process/proc.js';
import { Providers } from '../../src/providers/registry.js';
import { ControlPlane } from '../../src/server/control-plane.js';
import { runningDeploy } from '../../src/state/deploys.js';
import { listDrift } from '../../src/state/drift.js';
import { listInstances } from '../../src/state/instances.js';
import { listEvents } from '../../src/state/ledger.js';
import { getRelease } from '../../src/state/releases.js';
import { stopRoutersIn } from '../../src/router/data-plane.js';
import { ImageStore } from '../../src/store/image-store.js';
import { REPO, sh } from '../support/cli.js';
import { startLoad } from '../support/load.js';
import { waitFor } from '../support/net.js';
import { serviceStatus } from '../support/plane.js';
import { PROVIDERS } from '../support/providers.js';

const HELLO = join(REPO, 'examples', 'hello');

for (const { name: providerName, make } of PROVIDERS) {
  describe(`the guard on the ${providerName} provider`, () => {
    let home: string;
    let store: ImageStore;
    let plane: ControlPlane | undefined;
    const digests: Record<string, Digest> = {};
    const cleanups: Array<() => Promise<unknown>> = [];

    before(async () => {
      home = await mkdtemp(join(tmpdir(), `imago-guard-${providerName}-`));
      store = await ImageStore.open(home);
      const base: ImageSpec = normaliseConfig(
        { images: { hello: { context: HELLO, from: { host: ['node', 'busybox'] }, copy: [{ src: 'app/', dest: '/app' }], env: { APP_VERSION: '1' }, workdir: '/app', entrypoint: ['/usr/bin/node'], cmd: ['server.js'], user: '1000:1000' } } },
        join(HELLO, 'imago.yaml'),
      ).images.hello!;
      digests.v1 = (await bake({ store, spec: base })).digest;
      digests.v2 = (await bake({ store, spec: { ...base, env: [['APP_VERSION', '2']] } })).digest;
      // Healthy for 4 s, then dies with exit code 3: a release that keeps failing after it went live.
      const dying = "import('/app/server.js'); setTimeout(() => { console.log('giving up: out of widgets'); process.exit(3); }, 4000)";
      digests.dying = (await bake({ store, spec: { ...base, cmd: ['-e', dying] } })).digest;
    });

    after(async () => {
      await plane?.close({ stopRouters: true });
      await stopRoutersIn(store.home); // a test that failed between a close and a start left one
      for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
      const provider = make(store);
      for (const instance of await provider.list()) await provider.destroy(instance.id, { graceMs: 0 }).catch(() => undefined);
      await (provider as { removeVolumes?: () => Promise<unknown> }).removeVolumes?.();
      await provider.close();
      store.close();
      await rm(home, { recursive: true, force: true });
    });

    const startPlane = async () => {
      plane = new ControlPlane(store, Providers.of(make(store)), 'test');
      await plane.start();
      return plane;
    };
    const spec = (name: string, raw: Record<string, unknown> = {}): ServiceSpec =>
      normaliseConfig(
        {
          services: {
            [name]: {
              image: 'hello',
              replicas: 3,
              provider: providerName,
              health: { http: '/healthz', interval: '200ms', startPeriod: '20s', startInterval: '50ms' },
              stopGrace: '2s',
              drainTimeout: '2s',
              deployTimeout: '60s',
              ...raw,
            },
          },
        },
        join(HELLO, 'imago.yaml'),
      ).services[name]!;
    const deploy = async (s: ServiceSpec, digest = digests.v1!) => {
      const result = await (plane ?? (await startPlane())).deploy(s, digest, 'tester');
      assert.equal(result.outcome, 'live', result.reason);
      return result;
    };
    const status = (name: string) => serviceStatus(plane!, name);
    const routedHealthy = async (name: string) => (await status(name)).instances.filter((i) => i.routed && i.health === 'healthy');
    const atCapacity = async (name: string, replicas: number, without: string[] = []) => {
      const healthy = await routedHealthy(name);
      return healthy.length === replicas && healthy.every((i) => !without.includes(i.id)) && (await status(name)).instances.length === replicas;
    };

    /** Kills an instance from outside imago with SIGKILL: `kill -9` of the app, or `docker kill`. */
    const killFromOutside = async (id: string) => {
      if (providerName === 'docker') await sh('docker', ['kill', id]);
      else process.kill((await recordOf(id)).appPid, 'SIGKILL');
    };
    const recordOf = async (id: string) => JSON.parse(await readFile(join(home, 'instances', `${id}.json`), 'utf8')) as { appPid: number; env: Array<[string, string]> };
    const envOf = async (id: string): Promise<string[]> => {
      if (providerName === 'docker') return JSON.parse(await sh('docker', ['inspect', id, '--format', '{{json .Config.Env}}'])) as string[];
      return (await recordOf(id)).env.map(([k, v]) => `${k}=${v}`);
    };

    it('kill -9 of one instance while no deploy runs: replaced, zero failed requests', async () => {
      const { started } = await deploy(spec('crash'));
      const load = startLoad((await status('crash')).url, { idempotencyKey: true });
      let result;
      try {
        await new Promise((resolve) => setTimeout(resolve, 500)); // load before the kill
        await killFromOutside(started[1]!);
        await waitFor('a healthy replacement of the killed instance', () => atCapacity('crash', 3, [started[1]!]), 30_000);
        await new Promise((resolve) => setTimeout(resolve, 500)); // load after the recovery
      } finally {
        result = await load.stop();
      }
      assert.equal(result.failed, 0, `zero failed requests: ${result.failures.join(' | ')}`);
      assert.ok(result.byMethod.POST!.ok > 50 && result.byMethod.GET!.ok > 50, JSON.stringify(result.byMethod));
      const [row] = listInstances(store.db, 'crash').filter((i) => i.id === started[1]);
      assert.equal(row!.state, 'crashed');
      assert.match(row!.reason ?? '', providerName === 'docker' ? /killed by SIGKILL \(exit 137\)/ : /exit|killed/);
      assert.ok(listInstances(store.db, 'crash').some((i) => i.replaces === started[1]), 'the replacement says whose place it took');
    });

    it('every instance killed: back at full capacity with no command; imago drill reports it', async () => {
      const { started } = await deploy(spec('reboot'));
      const states = () => JSON.stringify(listInstances(store.db, 'reboot').map((i) => [i.id, i.state, i.reason]));
      assert.deepEqual((await status('reboot')).instances.map((i) => i.id).sort(), [...started].sort(), states());
      await Promise.all(started.map(killFromOutside)); // a host reboot, as the instances see it
      await waitFor('full capacity again', () => atCapacity('reboot', 3, started), 30_000);
      const load = startLoad((await status('reboot')).url, { idempotencyKey: true });
      const drill = await plane!.drill('reboot', 'all', 'tester').finally(async () => void (await load.stop()));
      assert.equal(drill.killed.length, 3);
      assert.ok(drill.recoveredMs > 0 && drill.recoveredMs < 30_000, `recovered in ${drill.recoveredMs} ms`);
      assert.ok(drill.requests > 0, 'the router saw requests meanwhile');
      assert.ok(drill.failedRequests >= 0 && drill.failedRequests <= drill.requests, 'with the whole fleet down a moment, some requests may fail: the drill counts them');
      assert.ok(await atCapacity('reboot', 3, drill.killed));
      assert.deepEqual(listEvents(store.db, { service: 'reboot' }).filter((e) => e.kind.startsWith('drill.')).map((e) => e.kind), ['drill.started', 'drill.finished']);
    });

    it('drift: tampering replaces the instance under `replace`, is only reported under `report`; an impostor is unmanaged, never routed', async () => {
      const tamper = async (id: string): Promise<ChildProcess | undefined> => {
        if (providerName === 'docker') {
          await sh('docker', ['exec', id, '/bin/sh', '-c', 'echo tampered > /tmp/x']);
          return undefined;
        }
        // nsenter into its pid and mount namespaces; the process ends by itself, or with the instance.
        // (The image has no sleep: its node waits instead.)
        const child = spawn('nsenter', ['-t', String((await recordOf(id)).appPid), '-p', '-m', '/usr/bin/node', '-e', 'setTimeout(() => {}, 6000)'], { stdio: 'ignore' });
        cleanups.push(() => new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(undefined) : child.once('exit', resolve))));
        return child;
      };
      const replaced = await deploy(spec('drift'));
      const load = startLoad((await status('drift')).url, { idempotencyKey: true });
      let result;
      try {
        await tamper(replaced.started[0]!);
        await waitFor('the tampered instance replaced', async () => (await atCapacity('drift', 3, [replaced.started[0]!])), 30_000);
      } finally {
        result = await load.stop();
      }
      assert.equal(result.failed, 0, `zero failed requests while replacing: ${result.failures.join(' | ')}`);
      const findings = listDrift(store.db, { service: 'drift' });
      assert.ok(findings.some((f) => f.instance === replaced.started[0] && f.action === 'replace' && (providerName === 'docker' ? /docker exec/ : /nsenter/).test(f.finding)), JSON.stringify(findings));

      const reported = await deploy(spec('drift-report', { drift: 'report' }));
      const target = reported.started[0]!;
      const entered = await tamper(target);
      await waitFor('the drift reported', async () => (await status('drift-report')).instances.some((i) => i.id === target && i.drift.length > 0), 30_000);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const kept = (await status('drift-report')).instances.find((i) => i.id === target)!;
      assert.deepEqual([kept.routed, kept.health], [true, 'healthy'], 'kept and routed under report');
      assert.equal(listDrift(store.db, { service: 'drift-report' }).filter((f) => f.instance === target)[0]?.action, 'report');
      if (entered) await new Promise((resolve) => (entered.exitCode !== null ? resolve(undefined) : entered.once('exit', resolve)));

      // An impostor: something carrying imago's labels for the service that imago did not start.
      let impostor: string;
      if (providerName === 'docker') {
        impostor = `impostor-${process.pid}`;
        await sh('docker', ['run', '-d', '--name', impostor, '--label', 'imago.service=drift-report', '--label', 'imago.release=1', '--env', 'PORT=8080', '--env', 'HOST=0.0.0.0', imageRef(digests.v1!)]);
        cleanups.push(() => sh('docker', ['rm', '-f', impostor]));
      } else {
        const squatter = spawn('sleep', ['120'], { stdio: 'ignore' });
        cleanups.push(async () => squatter.kill('SIGKILL'));
        impostor = `drift-report-r1-${process.pid.toString(16)}`;
        const record = { id: impostor, labels: { 'imago.service': 'drift-report', 'imago.release': '1', 'imago.digest': digests.v1 }, digest: digests.v1, pid: squatter.pid, startTime: processStartTime(squatter.pid!), appPid: squatter.pid, port: 1, startedAt: Date.now(), logFile: '/dev/null', statusFile: join(home, 'instances', `${impostor}.status`) };
        await writeFile(join(home, 'instances', `${impostor}.json`), JSON.stringify(record));
        cleanups.push(() => rm(join(home, 'instances', `${impostor}.json`), { force: true }));
      }
      await waitFor('the impostor reported as unmanaged', async () => (await status('drift-report')).instances.some((i) => i.id === impostor && i.bucket === 'unmanaged'), 20_000);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const seen = (await status('drift-report')).instances.find((i) => i.id === impostor)!;
      assert.deepEqual([seen.routed, seen.health], [false, 'unmanaged']);
      assert.ok(await atCapacity('drift-report', 3).catch(() => false) || (await routedHealthy('drift-report')).length === 3, 'the fleet is untouched by it');
      if (providerName === 'docker') assert.match(await sh('docker', ['inspect', impostor, '--format', '{{.State.Running}}']), /true/, 'never stopped');
    });

    it('maxAge 5s under load: every instance recycled at least once, zero failed requests', async () => {
      const { started } = await deploy(spec('phoenix', { maxAge: '5s' }));
      const load = startLoad((await status('phoenix')).url, { idempotencyKey: true });
      let result;
      try {
        await waitFor('every first instance recycled', async () => (await status('phoenix')).instances.every((i) => !started.includes(i.id)) && (await routedHealthy('phoenix')).length === 3, 60_000);
      } finally {
        result = await load.stop();
      }
      assert.equal(result.failed, 0, `zero failed requests: ${result.failures.join(' | ')}`);
      const recycled = listInstances(store.db, 'phoenix').filter((i) => started.includes(i.id));
      assert.ok(recycled.every((i) => i.state === 'stopped' && i.reason === 'drained'), JSON.stringify(recycled.map((i) => [i.state, i.reason])));
    });

    it('an image that keeps dying: backs off, degraded with the reason, starts bounded over 60 s', async () => {
      await deploy(spec('loop', { health: { http: '/healthz', interval: '200ms', startPeriod: '20s', startInterval: '50ms' } }), digests.dying!);
      const created = () => listInstances(store.db, 'loop').length;
      const first = created();
      const t0 = Date.now();
      await waitFor('degraded', async () => /^crash loop: \d+ failures in a row; the last: exit code 3/.test((await status('loop')).degraded?.reason ?? ''), 60_000);
      // The last output lines join the reason once the failed instance's log is complete (after its destroy).
      await waitFor('the reason with the last output lines', async () => /giving up: out of widgets/.test((await status('loop')).degraded?.reason ?? ''), 20_000);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, 60_000 - (Date.now() - t0))));
      const starts = created() - first;
      // Per place: a life of 4 s, then waits of 0, 1, 2, 4, 8, 16 s: at most 7 starts in 60 s.
      assert.ok(starts <= 3 * 7, `${starts} starts in 60 s`);
      assert.ok(starts >= 3 * 3, `${starts} starts in 60 s: it keeps trying`);
      await plane!.scale('loop', 0, 'tester');
    });

    it('a control plane restarted while an instance is dead re-adopts the rest and replaces only that one', async () => {
      const { started } = await deploy(spec('adopt'));
      const before = new Map((await status('adopt')).instances.map((i) => [i.id, i.startedAt]));
      await plane!.close();
      plane = undefined;
      await killFromOutside(started[0]!);
      await startPlane();
      await waitFor('full capacity again', () => atCapacity('adopt', 3, [started[0]!]), 30_000);
      const after = new Map((await status('adopt')).instances.map((i) => [i.id, i.startedAt]));
      for (const id of started.slice(1)) assert.equal(after.get(id), before.get(id), `${id} adopted as it was`);
      assert.equal([...after.keys()].filter((id) => !started.includes(id)).length, 1, 'one new instance');
    });

    it('two concurrent deploys: one gets 409, and the running one\'s instances carry its own spec', async () => {
      await deploy(spec('race'));
      const alice = plane!.deploy(spec('race', { env: { WHO: 'alice' }, strategy: { type: 'rolling', maxSurge: 1 } }), digests.v2!, 'alice');
      await waitFor('alice\'s deploy running', () => runningDeploy(store.db, 'race') !== undefined, 10_000);
      await assert.rejects(plane!.deploy(spec('race', { env: { WHO: 'mallory' }, volumes: { evil: '/var/evil' } }), digests.v2!, 'mallory'), /lock 'service:race' is held by 'alice/);
      const result = await alice;
      assert.equal(result.outcome, 'live', result.reason);
      assert.equal(result.started.length, 3);
      for (const id of result.started) {
        const env = await envOf(id);
        assert.ok(env.includes('WHO=alice') && !env.some((e) => e.startsWith('WHO=mallory')), `${id}: ${env.join(' ')}`);
        const row = listInstances(store.db, 'race').find((i) => i.id === id)!;
        assert.deepEqual(getRelease(store.db, row.releaseId)!.config.env, [['WHO', 'alice']]);
      }
    });

    it('changes from outside: a stopped instance is crashed, a removed one lost; both replaced, each recorded with why', async () => {
      const { started } = await deploy(spec('outside'));
      const [stopped, removed] = started as [string, string];
      if (providerName === 'docker') {
        // `docker rm -f` of a running container kills it first: the engine reports a death, then
        // the removal, and a round that runs between the two rightly calls it crashed. So the
        // container goes while no control plane watches, and the new one finds it gone.
        await plane!.close();
        plane = undefined;
        await sh('docker', ['rm', '-f', removed]);
        await startPlane();
        // SIGKILL: a SIGTERM from outside is drift until the container dies, which races the death.
        await sh('docker', ['kill', stopped]);
      } else {
        process.kill((await recordOf(stopped)).appPid, 'SIGTERM');
        // The record goes; the process it named is ended by the test (imago no longer knows it).
        const orphan = await recordOf(removed);
        await rm(join(home, 'instances', `${removed}.json`));
        process.kill(orphan.appPid, 'SIGKILL');
      }
      await waitFor('both replaced', () => atCapacity('outside', 3, [stopped, removed]), 30_000);
      const rows = new Map(listInstances(store.db, 'outside').map((i) => [i.id, i]));
      assert.equal(rows.get(stopped)!.state, 'crashed', JSON.stringify([...rows.values()].map((r) => [r.id, r.state, r.reason])));
      assert.match(rows.get(stopped)!.reason ?? '', /exit|killed/);
      assert.equal(rows.get(removed)!.state, 'lost');
      assert.match(rows.get(removed)!.reason ?? '', /the provider no longer has it/);
    });

    it('scale 3 → 10 → 2 touches no instance it keeps', async () => {
      await deploy(spec('scale'));
      const first = new Map((await status('scale')).instances.map((i) => [i.id, i.startedAt]));
      const up = await plane!.scale('scale', 10, 'tester');
      assert.deepEqual([up.from, up.to], [3, 10]);
      const ten = new Map((await status('scale')).instances.map((i) => [i.id, i.startedAt]));
      assert.equal((await routedHealthy('scale')).length, 10);
      for (const [id, startedAt] of first) assert.equal(ten.get(id), startedAt, `${id} untouched by the scale-up`);
      await plane!.scale('scale', 2, 'tester');
      const two = (await status('scale')).instances;
      assert.equal(two.length, 2);
      for (const i of two) assert.equal(ten.get(i.id), i.startedAt, `${i.id} kept as it was`);
      assert.deepEqual(listEvents(store.db, { service: 'scale' }).filter((e) => e.kind === 'service.scaled').map((e) => [e.actor, e.data.from, e.data.to]), [['tester', 3, 10], ['tester', 10, 2]]);
    });
  });
}

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { cleanUpHome, imago, sh, startServer } from '../support/cli.js';
import { startLoad } from '../support/load.js';
import { freePort, waitFor } from '../support/net.js';
import { writeHelloProject } from '../support/project.js';

type Status = Array<{ router: { kind: string; pid: number | null }; converged: boolean; live: { version: number } | null; instances: Array<{ id: string; release: number; routed: boolean; health: string }>; traffic: { requests: number; failed: number } }>;

const CASES = [
  { providerName: 'process', dataPlane: 'haproxy' },
  { providerName: 'process', dataPlane: 'builtin' },
  { providerName: 'docker', dataPlane: 'haproxy' },
  { providerName: 'docker', dataPlane: 'builtin' },
] as const;

for (const { providerName, dataPlane } of CASES) {
  describe(`the data plane outlives the control plane (${dataPlane} on the ${providerName} provider)`, () => {
    const servers: ChildProcess[] = [];
    let home = '';

    after(() => cleanUpHome(home, servers, [providerName]));

    it('kill -9 of imago server, an instance killed meanwhile, the restart, rolling and blue-green deploys, a keepPrevious rollback: 0 failed requests, one router process throughout', async () => {
      home = await mkdtemp(join(tmpdir(), `imago-dataplane-${providerName}-`));
      const project = await mkdtemp(join(tmpdir(), 'imago-dataplane-project-'));
      after(() => rm(project, { recursive: true, force: true }));
      const listen = await freePort();
      const service = (strategy: string) => [
        '    replicas: 3',
        `    provider: ${providerName}`,
        `    listen: 127.0.0.1:${listen}`,
        '    health: { http: /healthz, interval: 100ms, startPeriod: 20s }',
        '    drainTimeout: 3s',
        '    keepPrevious: 5m',
        '    stopGrace: 3s',
        `    strategy: ${strategy}`,
      ];
      const images = { hello: { host: ['node', 'busybox'] }, hello2: { host: ['node', 'busybox'], extra: ['    env: { APP_VERSION: "2" }'] } };
      await writeHelloProject(project, service('rolling'), images);
      const baked = await imago(['bake'], { cwd: project, home });
      assert.equal(baked.code, 0, baked.stderr);
      const api = await freePort();
      const up = async () => {
        const server = await startServer(home, api, ['--data-plane', dataPlane]);
        servers.push(server);
        return server;
      };
      const status = async () => JSON.parse((await imago(['status', '--json'], { cwd: project, home })).stdout || '[]') as Status;

      let server = await up();
      const first = await imago(['deploy', 'web'], { cwd: project, home });
      assert.equal(first.code, 0, first.stderr);
      const [before] = await status();
      const pid = before!.router.pid;
      assert.ok(pid, `a router process: ${JSON.stringify(before!.router)}`);
      assert.match(before!.router.kind, dataPlane === 'haproxy' ? /^haproxy 2\.\d+/ : /^built-in$/);

      const url = `http://127.0.0.1:${listen}/`;
      // With Idempotency-Keys: a POST cut by an instance killed mid-answer may be sent again.
      const kept = startLoad(url, { clients: 3, idempotencyKey: true });
      const fresh = startLoad(url, { clients: 2, keepAlive: false, idempotencyKey: true });
      const sent = () => kept.sent() + fresh.sent();
      const progress = async (what: string, count: number) => {
        const from = sent();
        await waitFor(`${count} more requests answered (${what})`, () => sent() >= from + count, 30_000);
      };
      try {
        await progress('before the kill', 300);
        server.kill('SIGKILL');
        await new Promise((resolve) => server.once('exit', resolve));
        await progress('with no control plane', 500);
        // An instance dies while no control plane runs: the router alone takes it out of rotation.
        const victim = before!.instances[0]!.id;
        if (providerName === 'docker') await sh('docker', ['kill', victim]);
        else process.kill((JSON.parse(await readFile(join(home, 'instances', `${victim}.json`), 'utf8')) as { appPid: number }).appPid, 'SIGKILL');
        await progress('with an instance dead and no control plane', 1_000);
        server = await up();
        await waitFor('the restarted control plane converged on the same router', async () => {
          const [web] = await status();
          return web?.converged === true && web.router.pid === pid && web.instances.filter((i) => i.routed && i.health === 'healthy').length === 3;
        }, 30_000);
        await progress('after the restart', 300);

        const rolling = await imago(['deploy', 'web', '--image', 'hello2'], { cwd: project, home });
        assert.equal(rolling.code, 0, rolling.stderr);
        const second = (await status())[0]!.instances.filter((i) => i.release === 2).map((i) => i.id).sort();
        await writeHelloProject(project, service('blue-green'), images);
        const blueGreen = await imago(['deploy', 'web', '--image', 'hello'], { cwd: project, home });
        assert.equal(blueGreen.code, 0, blueGreen.stderr);
        await progress('after the deploys', 300);

        // Release 2's instances were kept (keepPrevious): the rollback routes them again.
        const rollback = await imago(['rollback', 'web'], { cwd: project, home });
        assert.equal(rollback.code, 0, rollback.stderr);
        const [web] = await status();
        assert.deepEqual(web!.instances.filter((i) => i.routed).map((i) => i.id).sort(), second, 'the same instances serve again');
        await progress('after the rollback', 300);
      } finally {
        const results = [await kept.stop(), await fresh.stop()];
        for (const [name, result] of [['keep-alive', results[0]!], ['a connection each', results[1]!]] as const) {
          assert.equal(result.failed, 0, `${name}: ${result.failed} of ${result.ok + result.failed} failed: ${result.failures.join('; ')}`);
          assert.ok(result.byMethod.GET!.ok > 100 && result.byMethod.POST!.ok > 100, `${name}: ${JSON.stringify(result.byMethod)}`);
        }
      }
      const [after2] = await status();
      assert.equal(after2!.router.pid, pid, 'the router process was never restarted');
      assert.equal(after2!.live?.version, 4);
      assert.equal(after2!.traffic.failed, 0, 'the router saw no failure either');
    });
  });
}

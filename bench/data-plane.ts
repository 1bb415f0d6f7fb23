/**
 * The data plane across everything that used to fail requests. `imago server` runs as the real
 * CLI; two wrk clients send requests without pause the whole time (one with keep-alive, one
 * with `Connection: close`) through the service's router while, in order:
 *
 * 1. `kill -9` of `imago server`, 2 s with no control plane, then a new server that adopts
 *    the router and the instances;
 * 2. a rolling deploy (a new release);
 * 3. a blue-green deploy;
 * 4. a rollback inside `keepPrevious` (the API call `imago rollback` makes): the kept instances
 *    serve again. Timed from the call to the moment the router routes exactly the kept
 *    instances (polling the router's own state every 5 ms), and to the call's answer.
 *
 * It reports the requests, the failures wrk saw (non-2xx and socket errors), whether the
 * router's pid stayed the same, and the rollback times. Per provider and data plane:
 *
 *   node --import tsx bench/data-plane.ts [--providers process,docker] [--data-planes haproxy,builtin] [--runs 1]
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freeLoopbackPort as freePort } from '../src/controller/ports.js';
import { DockerProvider } from '../src/providers/docker/docker-provider.js';
import { ProcessProvider } from '../src/providers/process/process-provider.js';
import { makeRouter, routerFolder, stopRoutersIn, type DataPlaneKind } from '../src/router/data-plane.js';
import { ImageStore } from '../src/store/image-store.js';
import { runChild } from './lib/child.js';
import { formatMs, markdownTable } from './lib/stats.js';
import { startWrk, type WrkResult } from './lib/wrk.js';

const log = (line: string) => process.stderr.write(`${line}\n`);
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(repoRoot, 'bin', 'imago.js');


/** Polls `check` every 5 ms until it holds; fails naming `what` after `timeoutMs`. */
async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<number> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > timeoutMs) throw new Error(`${what} did not happen within ${timeoutMs / 1000} s`);
    await sleep(5);
  }
  return performance.now() - started;
}

interface Outcome {
  provider: string;
  dataPlane: string;
  requests: number;
  failed: number;
  samePid: boolean;
  flipMs: number;
  rollbackMs: number;
}

async function scenario(provider: 'process' | 'docker', dataPlane: DataPlaneKind): Promise<Outcome> {
  const home = await mkdtemp(join(tmpdir(), 'imago-bench-dp-'));
  const project = await mkdtemp(join(tmpdir(), 'imago-bench-dp-project-'));
  const servers: ChildProcess[] = [];
  const listen = await freePort();
  const api = await freePort();
  const imagoCli = (args: string[]) => runChild(process.execPath, [BIN, '--home', home, ...args], { cwd: project });
  const must = async (args: string[]) => {
    const r = await imagoCli(args);
    if (r.code !== 0) throw new Error(`imago ${args.join(' ')}: ${r.stderr || r.stdout}`);
    return r;
  };
  const image = (name: string, env: string[] = []) => [
    `  ${name}:`,
    `    context: ${join(repoRoot, 'examples', 'hello')}`,
    '    from: { host: [node, busybox] }',
    '    copy: [{ src: app/, dest: /app }]',
    '    workdir: /app',
    '    entrypoint: [/usr/bin/node]',
    '    cmd: [server.js]',
    ...env,
  ];
  const config = (strategy: string) =>
    writeFile(
      join(project, 'imago.yaml'),
      [
        'images:',
        ...image('hello'),
        ...image('hello2', ['    env: { APP_VERSION: "2" }']),
        'services:',
        '  web:',
        '    image: hello',
        '    replicas: 3',
        `    provider: ${provider}`,
        `    listen: 127.0.0.1:${listen}`,
        '    health: { http: /healthz, interval: 100ms, startPeriod: 20s }',
        '    drainTimeout: 3s',
        '    stopGrace: 3s',
        '    keepPrevious: 5m',
        `    strategy: ${strategy}`,
        '',
      ].join('\n'),
    );
  const startServer = async () => {
    const child = spawn(process.execPath, [BIN, '--home', home, 'server', '--listen', `127.0.0.1:${api}`, '--data-plane', dataPlane], { stdio: 'ignore' });
    servers.push(child);
    await until('imago server answering', () => fetch(`http://127.0.0.1:${api}/v1/ping`).then((r) => r.ok, () => false), 30_000);
    return child;
  };
  type Status = Array<{ converged: boolean; router: { pid: number }; instances: Array<{ id: string; release: number; routed: boolean; health: string }> }>;
  const status = async () => JSON.parse((await imagoCli(['status', '--json'])).stdout || '[]') as Status;
  try {
    await config('rolling');
    await must(['bake']);
    let server = await startServer();
    await must(['deploy', 'web']);
    const pid = (await status())[0]!.router.pid;
    const url = `http://127.0.0.1:${listen}/`;
    const kept = startWrk(url, 600, { threads: 1, connections: 8 });
    const fresh = startWrk(url, 600, { threads: 1, connections: 4, keepAlive: false });
    let results: WrkResult[] = [];
    let flipMs = 0;
    let rollbackMs = 0;
    try {
      await sleep(2_000);
      log(`  ${provider}/${dataPlane}: kill -9 of imago server`);
      server.kill('SIGKILL');
      await new Promise((r) => server.once('exit', r));
      await sleep(2_000); // no control plane at all for 2 s
      server = await startServer();
      await until('the restarted server converged', async () => (await status())[0]?.converged === true, 60_000);
      log(`  ${provider}/${dataPlane}: rolling deploy`);
      await must(['deploy', 'web', '--image', 'hello2']);
      const second = (await status())[0]!.instances.filter((i) => i.release === 2).map((i) => i.id).sort();
      log(`  ${provider}/${dataPlane}: blue-green deploy`);
      await config('blue-green');
      await must(['deploy', 'web', '--image', 'hello']);
      await sleep(2_000);
      log(`  ${provider}/${dataPlane}: rollback inside keepPrevious`);
      // Reads the router's own state, as the control plane does (the same folder: an adopter that only reads).
      const router = makeRouter(dataPlane, 'web', { host: '127.0.0.1', port: listen, protocol: 'http' }, routerFolder(home, 'web'));
      const flipped = async () => {
        const routed = (await router.snapshot()).targets.filter((t) => t.routed).map((t) => t.id).sort();
        return routed.length === second.length && routed.every((id, i) => id === second[i]);
      };
      // Read once before the clock starts: the first read of the router's state reads its whole access log.
      assert(!(await flipped()), 'the kept instances were routed before the rollback');
      // The API call `imago rollback web` makes, straight (a CLI process's start is not the rollback's time).
      const token = (await readFile(join(home, 'api-token'), 'utf8')).trim();
      const started = performance.now();
      const rolling = fetch(`http://127.0.0.1:${api}/v1/services/web/rollback`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'x-imago-actor': 'bench' }, body: '{}' });
      flipMs = await until('the kept instances routed again', flipped, 60_000);
      const back = await rolling;
      rollbackMs = performance.now() - started;
      if (!back.ok) throw new Error(`POST /v1/services/web/rollback: ${back.status} ${await back.text()}`);
      await router.close();
      await sleep(2_000);
    } finally {
      results = [await kept.stop(), await fresh.stop()];
    }
    for (const [name, r] of [['keep-alive', results[0]!], ['Connection: close', results[1]!]] as const) log(`  wrk (${name}): ${r.requests} requests, ${r.non2xx} non-2xx, socket errors ${JSON.stringify(r.socketErrors)}`);
    const samePid = (await status())[0]!.router.pid === pid;
    const requests = results.reduce((a, r) => a + r.requests, 0);
    const failed = results.reduce((a, r) => a + r.non2xx + r.socketErrors.connect + r.socketErrors.read + r.socketErrors.write + r.socketErrors.timeout, 0);
    return { provider, dataPlane, requests, failed, samePid, flipMs, rollbackMs };
  } finally {
    for (const s of servers) if (s.exitCode === null && s.signalCode === null) s.kill('SIGKILL');
    await stopRoutersIn(home);
    const store = await ImageStore.open(home);
    const p = provider === 'docker' ? new DockerProvider(store) : new ProcessProvider(store);
    for (const instance of await p.list()) await p.destroy(instance.id, { graceMs: 0 });
    await p.close();
    store.close();
    await rm(home, { recursive: true, force: true });
    await rm(project, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { providers: { type: 'string' }, 'data-planes': { type: 'string' }, runs: { type: 'string' } } });
  const providers = (values.providers ?? 'process,docker').split(',') as Array<'process' | 'docker'>;
  const planes = (values['data-planes'] ?? 'haproxy,builtin').split(',') as DataPlaneKind[];
  const runs = Number(values.runs ?? 1);
  const build = await runChild('npm', ['run', 'build'], { cwd: repoRoot });
  if (build.code !== 0) throw new Error(`npm run build: ${build.stderr}`);
  const rows: string[][] = [];
  for (let run = 0; run < runs; run++) {
    for (const provider of providers) {
      for (const plane of planes) {
        log(`run ${run + 1}/${runs}: ${provider} provider, ${plane} data plane`);
        const o = await scenario(provider, plane);
        log(`  ${o.requests} requests, ${o.failed} failed, router pid ${o.samePid ? 'unchanged' : 'CHANGED'}, flip ${formatMs(o.flipMs)}, rollback command ${formatMs(o.rollbackMs)}`);
        rows.push([o.provider, o.dataPlane, o.requests.toLocaleString('en'), String(o.failed), o.samePid ? 'yes' : 'NO', formatMs(o.flipMs), formatMs(o.rollbackMs)]);
      }
    }
  }
  const command = `node --import tsx bench/data-plane.ts --providers ${providers.join(',')} --data-planes ${planes.join(',')} --runs ${runs}`;
  process.stdout.write(
    [
      `# Data plane bench, ${new Date().toISOString()}`,
      '',
      `\`${command}\` on ${cpus().length} cores. Two wrk clients (8 connections with keep-alive, 4 with Connection: close) through the router across: kill -9 of imago server + 2 s with none + restart, a rolling deploy, a blue-green deploy, a rollback inside keepPrevious.`,
      '',
      markdownTable(['provider', 'data plane', 'requests', 'failed', 'same router pid', 'rollback: traffic flipped', 'rollback: API call answered'], rows),
      '',
    ].join('\n'),
  );
}

await main();

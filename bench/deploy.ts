/**
 * imago deploys on the process provider, in one run, in-process (as test/controller/deploy.test.ts):
 * a first deploy of 10 replicas (blue-green), a rolling update to v2 (maxSurge 2, maxUnavailable 0)
 * and a rollback to v1, each timed, the last two under constant `wrk` load through the router
 * (failed requests counted), then the router's overhead: wrk through the router vs straight at an
 * instance, with 10 routed instances and with 1.
 *
 *   node --import tsx bench/deploy.ts
 *
 * Needs bubblewrap, busybox and wrk (Debian package wrk). wrk is only pointed at 127.0.0.1.
 * Prints a markdown report to stdout; progress goes to stderr.
 */
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { mkdtemp, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bake } from '../src/bake/baker.js';
import type { ServiceSpec } from '../src/config/types.js';
import type { Digest } from '../src/oci/digest.js';
import { ProcessProvider } from '../src/providers/process/process-provider.js';
import { Providers } from '../src/providers/registry.js';
import { ControlPlane } from '../src/server/control-plane.js';
import { ImageStore } from '../src/store/image-store.js';
import { instancesOf, urlOf } from './lib/plane.js';
import { failures, helloConfig, LOAD_MARGIN_MS, underLoad, withVersion } from './lib/hello-deploy.js';
import { formatMs, markdownTable } from './lib/stats.js';
import { runWrk } from './lib/wrk.js';

const REPLICAS = 10;
const OVERHEAD_SECONDS = 5;

const log = (line: string) => process.stderr.write(`${line}\n`);

async function main(): Promise<void> {
  const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const helloDir = join(repoRoot, 'examples', 'hello');
  const home = await mkdtemp(join(tmpdir(), 'imago-bench-deploy-'));
  const startedAt = new Date();
  const loadAtStart = loadavg()[0]!;
  const started = Date.now();
  let store: ImageStore | undefined;
  let plane: ControlPlane | undefined;

  try {
    store = await ImageStore.open(home);
    // examples/hello's image (its run step left out: the app does not need /var/lib/hello) and a
    // service with the bench's health settings.
    const config = helloConfig(helloDir, {
      replicas: REPLICAS,
      health: { http: '/healthz', interval: '100ms', startPeriod: '10s' },
      strategy: 'blue-green',
      drainTimeout: '10s',
      stopGrace: '5s',
    });
    const base = config.images.hello!;
    const blueGreen: ServiceSpec = config.services.hello!;
    const rolling: ServiceSpec = { ...blueGreen, strategy: { kind: 'rolling', maxSurge: { kind: 'count', value: 2 }, maxUnavailable: { kind: 'count', value: 0 } } };
    log(`home ${home}; service: ${JSON.stringify({ health: blueGreen.health, deployTimeout: blueGreen.deployTimeout, drainTimeout: blueGreen.drainTimeout, stopGrace: blueGreen.stopGrace })}`);

    const digests: Record<string, Digest> = {};
    for (const v of ['1', '2']) {
      const t = performance.now();
      digests[v] = (await bake({ store, spec: withVersion(base, v) })).digest;
      log(`baked v${v} ${digests[v]} in ${formatMs(performance.now() - t)}`);
    }

    plane = new ControlPlane(store, Providers.of(new ProcessProvider(store)), 'bench');
    await plane.start();
    const expectLive = (what: string, r: { outcome: string; reason?: string }) => {
      if (r.outcome !== 'live') throw new Error(`${what}: deploy ${r.outcome}: ${r.reason}`);
    };
    const routedCount = async () => (await instancesOf(plane!, 'hello')).filter((i) => i.routed).length;

    // 1. First deploy: 10 replicas of v1, blue-green (all started at once).
    let t = performance.now();
    const first = await plane.deploy(blueGreen, digests['1']!, 'bench');
    const firstMs = performance.now() - t;
    expectLive('first deploy', first);
    const url = await urlOf(plane, 'hello');
    log(`router at ${url}`);
    log(`1. first deploy (blue-green, ${REPLICAS} × v1): ${formatMs(firstMs)}, ${first.started.length} started, ${await routedCount()} routed`);

    // 2. Rolling update to v2 under load.
    const roll = await underLoad(url, () => plane!.deploy(rolling, digests['2']!, 'bench'));
    expectLive('rolling to v2', roll.value);
    log(`2. rolling v1 → v2 (maxSurge 2, maxUnavailable 0): ${formatMs(roll.ms)}; wrk ${roll.wrk.rps} req/s, ${failures(roll.wrk)}`);

    // 3. Rollback to v1 under load (release 1's own config: blue-green).
    const back = await underLoad(url, () => plane!.rollback('hello', 1, 'bench'));
    expectLive('rollback to v1', back.value);
    log(`3. rollback to v1: ${formatMs(back.ms)}; wrk ${back.wrk.rps} req/s, ${failures(back.wrk)}`);
    const answer = (await (await fetch(url)).json()) as { version: string };
    if (answer.version !== '1') throw new Error(`after the rollback the router answers version ${answer.version}`);

    // 5. Router overhead, 10 routed instances: through the router vs one instance directly.
    const pickRouted = async () => {
      const routed = (await instancesOf(plane!, 'hello')).filter((i) => i.routed);
      if (!routed[0]) throw new Error('no routed instance');
      return { n: routed.length, address: routed[0].address };
    };
    const ten = await pickRouted();
    log(`5. overhead with ${ten.n} routed: router ${url}, direct http://${ten.address}`);
    const router10 = await runWrk(`${url}/`, OVERHEAD_SECONDS);
    const direct10 = await runWrk(`http://${ten.address}/`, OVERHEAD_SECONDS);
    log(`   router ${router10.rps} req/s, direct ${direct10.rps} req/s`);

    // ... and with 1 routed instance (a blue-green deploy of v1 with replicas 1).
    t = performance.now();
    const one = await plane.scale('hello', 1, 'bench');
    log(`   scaled ${one.from} → ${one.to} in ${formatMs(performance.now() - t)}`);
    const single = await pickRouted();
    if (single.n !== 1) throw new Error(`expected 1 routed instance, got ${single.n}`);
    const router1 = await runWrk(`${url}/`, OVERHEAD_SECONDS);
    const direct1 = await runWrk(`http://${single.address}/`, OVERHEAD_SECONDS);
    log(`   router ${router1.rps} req/s, direct ${direct1.rps} req/s`);

    const rps = (n: number) => `${Math.round(n)} req/s`;
    const table = markdownTable(
      ['measure', 'time', 'wrk through the router (req/s, requests)', 'failed requests (wrk)'],
      [
        [`1. first deploy: ${REPLICAS} × v1, blue-green`, formatMs(firstMs), 'no load', '–'],
        [`2. rolling ${REPLICAS} × v1 → v2, maxSurge 2, maxUnavailable 0`, formatMs(roll.ms), `${rps(roll.wrk.rps)}, ${roll.wrk.requests} in ${roll.wrk.seconds.toFixed(1)} s`, failures(roll.wrk)],
        [`3. rollback → v1 (release 1's config: blue-green)`, formatMs(back.ms), `${rps(back.wrk.rps)}, ${back.wrk.requests} in ${back.wrk.seconds.toFixed(1)} s`, failures(back.wrk)],
      ],
    );
    const overhead = markdownTable(
      ['wrk -t2 -c16 -d5s', 'through the router', 'one instance directly', 'router / direct'],
      [
        [`${ten.n} routed instances`, rps(router10.rps), rps(direct10.rps), `${(router10.rps / direct10.rps).toFixed(2)}×`],
        [`1 routed instance (the same instance both ways)`, rps(router1.rps), rps(direct1.rps), `${(router1.rps / direct1.rps).toFixed(2)}×`],
      ],
    );
    const overheadErrors = [router10, direct10, router1, direct1].map(failures);
    const cpu = cpus();
    const report = [
      `### Deploy run, ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC`,
      '',
      `Command: \`node --import tsx bench/deploy.ts\` (took ${formatMs(Date.now() - started)}).`,
      `Machine: ${cpu.length} cores (${cpu[0]?.model.trim() ?? 'unknown CPU'}), shared and noisy, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Linux ${release()}, Node ${process.version}, wrk 4.1.0; load average ${loadAtStart.toFixed(2)} at start, ${loadavg()[0]!.toFixed(2)} at end.`,
      '',
      table,
      '',
      overhead,
      '',
      `- wrk -t2 -c16 during 2 and 3: started ${LOAD_MARGIN_MS} ms before the deploy call and stopped (SIGINT) ${LOAD_MARGIN_MS} ms after it returned, so its window covers the whole deploy.`,
      `- Errors during the overhead runs (router 10, direct 10, router 1, direct 1): ${overheadErrors.join(' | ')}.`,
      '- Health: http /healthz, interval 100 ms, startPeriod 10 s; the time of a deploy is `ControlPlane.deploy()` (or `rollback()`) from call to return (new instances started, healthy, routed; old ones drained and stopped).',
      '',
    ].join('\n');
    process.stdout.write(`${report}\n`);
  } finally {
    log('cleaning up: instances, control plane, temp home');
    await plane?.close({ stopRouters: true }).catch((error: Error) => log(`  control plane close: ${error.message}`));
    if (store) {
      const provider = new ProcessProvider(store);
      for (const instance of await provider.list()) await provider.destroy(instance.id, { graceMs: 0 }).catch((error: Error) => log(`  destroy ${instance.id}: ${error.message}`));
      const left = await provider.list();
      if (left.length) log(`  ${left.length} instances still listed`);
      store.close();
    }
    await rm(home, { recursive: true, force: true });
  }
}

main().catch((error: Error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error.message}\n`);
  process.exitCode = 1;
});

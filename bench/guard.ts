/**
 * The guard's speed on the process and docker providers, in one run, in-process (a
 * ControlPlane as `imago server` runs it):
 *
 * 1. crash → healthy replacement serving: SIGKILL of one instance from outside (the app's pid,
 *    or `docker kill`), until the router again routes `replicas` healthy instances, none of them
 *    the killed one. Repeated (`--kills`, default 20). The service's `backoff.reset` is 1 s and
 *    each kill waits 1.5 s after the recovery, so every kill is a first failure (no back-off):
 *    this measures replacement, not the crash-loop policy.
 * 2. 10 of 10 killed → full capacity: `imago drill --kill all` (ControlPlane.drill) on a fresh
 *    service of 10, its own result (kills to full healthy capacity). `--runs` times.
 * 3. scale 3 → 10: ControlPlane.scale from call to return (10 healthy and routed), then back
 *    to 3 (not timed). `--runs` times.
 *
 * Health everywhere: http /healthz, interval 1 s, startInterval 100 ms, startPeriod 10 s (the
 * example's settings plus the default start interval). No load: the 2 cores are the instances'
 * and the control plane's.
 *
 *   node --import tsx bench/guard.ts [--kills N] [--runs N] [--providers process,docker]
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { bake } from '../src/bake/baker.js';
import type { ProviderName, ServiceSpec } from '../src/config/types.js';
import type { Digest } from '../src/oci/digest.js';
import { DockerProvider } from '../src/providers/docker/docker-provider.js';
import { ProcessProvider } from '../src/providers/process/process-provider.js';
import type { Provider } from '../src/providers/provider.js';
import { Providers } from '../src/providers/registry.js';
import { ControlPlane } from '../src/server/control-plane.js';
import { ImageStore } from '../src/store/image-store.js';
import { runChild } from './lib/child.js';
import { helloConfig } from './lib/hello-deploy.js';
import { instancesOf } from './lib/plane.js';
import { formatMs, markdownTable, quantile, summarise } from './lib/stats.js';

const log = (line: string) => process.stderr.write(`${line}\n`);

/** Polls `check` every 5 ms until it holds; fails naming `what` after `timeoutMs`. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs / 1000} s`);
    await sleep(5);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { kills: { type: 'string' }, runs: { type: 'string' }, providers: { type: 'string' } } });
  const kills = Number(values.kills ?? 20);
  const runs = Number(values.runs ?? 3);
  const names = (values.providers ?? 'process,docker').split(',') as ProviderName[];
  if (!Number.isInteger(kills) || kills < 1 || !Number.isInteger(runs) || runs < 1) throw new Error('--kills and --runs: expected positive whole numbers');
  const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const home = await mkdtemp(join(tmpdir(), 'imago-bench-guard-'));
  const store = await ImageStore.open(home);
  const startedAt = new Date();
  const loadAtStart = loadavg()[0]!;
  const made: Provider[] = [];
  const planes: ControlPlane[] = [];
  const rows: string[][] = [];
  try {
    const config = helloConfig(join(repoRoot, 'examples', 'hello'), {});
    const { digest } = await bake({ store, spec: config.images.hello! });
    for (const name of names) {
      const provider = name === 'docker' ? new DockerProvider(store) : new ProcessProvider(store);
      made.push(provider);
      const plane = new ControlPlane(store, Providers.of(provider), 'bench');
      await plane.start();
      planes.push(plane);
      const spec = (service: string, raw: Record<string, unknown>): ServiceSpec => {
        const health = { http: '/healthz', interval: '1s', startPeriod: '10s', startInterval: '100ms' };
        const hello = helloConfig(join(repoRoot, 'examples', 'hello'), { provider: name, health, stopGrace: '5s', drainTimeout: '5s', ...raw }).services.hello!;
        return { ...hello, name: service };
      };
      const healthyRouted = async (service: string, without: Set<string>, replicas: number) => {
        const instances = await instancesOf(plane, service);
        const serving = instances.filter((i) => i.routed && i.health === 'healthy' && !without.has(i.id));
        return serving.length === replicas && instances.length === replicas;
      };
      const killFromOutside = async (id: string) => {
        if (name === 'docker') {
          const r = await runChild('docker', ['kill', id]);
          if (r.code !== 0) throw new Error(`docker kill ${id}: ${r.stderr}`);
        } else {
          process.kill((JSON.parse(await readFile(join(home, 'instances', `${id}.json`), 'utf8')) as { appPid: number }).appPid, 'SIGKILL');
        }
      };
      const deploy = async (s: ServiceSpec, d: Digest) => {
        const result = await plane.deploy(s, d, 'bench');
        if (result.outcome !== 'live') throw new Error(`${s.name}: deploy ${result.outcome}: ${result.reason}`);
      };

      // 1. crash → healthy replacement serving.
      const crash = `guard-${name}-crash`;
      await deploy(spec(crash, { replicas: 3, backoff: { reset: '1s' } }), digest);
      const recoveries: number[] = [];
      for (let k = 0; k < kills; k++) {
        const instances = await instancesOf(plane, crash);
        const victim = instances[k % instances.length]!.id;
        const t = performance.now();
        await killFromOutside(victim);
        await until(`${crash}: a healthy replacement of ${victim}`, () => healthyRouted(crash, new Set([victim]), 3));
        recoveries.push(performance.now() - t);
        await sleep(1500);
      }
      await plane.scale(crash, 0, 'bench');
      const c = summarise(recoveries)!;
      log(`${name} crash → serving: p50 ${formatMs(c.median)}, p99 ${formatMs(quantile(recoveries, 0.99))} (${recoveries.map((ms) => Math.round(ms)).join(', ')})`);
      rows.push([name, `1. crash → healthy replacement serving (${kills} kills)`, formatMs(c.median), formatMs(quantile(recoveries, 0.99)), formatMs(c.min), formatMs(Math.max(...recoveries))]);

      // 2. 10 of 10 killed → full capacity (a drill), on fresh services: fresh lineages, no back-off.
      const drills: number[] = [];
      for (let run = 0; run < runs; run++) {
        const service = `guard-${name}-drill-${run}`;
        await deploy(spec(service, { replicas: 10 }), digest);
        const result = await plane.drill(service, 'all', 'bench');
        drills.push(result.recoveredMs);
        log(`${name} drill ${run + 1}: ${result.killed.length} killed, full capacity in ${formatMs(result.recoveredMs)}`);
        await plane.scale(service, 0, 'bench');
      }
      const d = summarise(drills)!;
      rows.push([name, `2. 10 of 10 killed → full capacity (imago drill, ${runs} runs)`, formatMs(d.median), '–', formatMs(d.min), formatMs(Math.max(...drills))]);

      // 3. scale 3 → 10.
      const scaling = `guard-${name}-scale`;
      await deploy(spec(scaling, { replicas: 3 }), digest);
      const ups: number[] = [];
      for (let run = 0; run < runs; run++) {
        const t = performance.now();
        await plane.scale(scaling, 10, 'bench');
        ups.push(performance.now() - t);
        log(`${name} scale 3 → 10 ${run + 1}: ${formatMs(ups.at(-1)!)}`);
        await plane.scale(scaling, 3, 'bench');
        await sleep(1000);
      }
      await plane.scale(scaling, 0, 'bench');
      const u = summarise(ups)!;
      rows.push([name, `3. scale 3 → 10, until 10 healthy and routed (${runs} runs)`, formatMs(u.median), '–', formatMs(u.min), formatMs(Math.max(...ups))]);
    }
    const cpu = cpus();
    process.stdout.write(
      [
        `### Guard run, ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC`,
        '',
        `Command: \`node --import tsx bench/guard.ts --kills ${kills} --runs ${runs} --providers ${names.join(',')}\`. ${cpu.length} cores (${cpu[0]?.model.trim() ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Linux ${release()}, Node ${process.version}; load average ${loadAtStart.toFixed(2)} at the start, ${loadavg()[0]!.toFixed(2)} at the end.`,
        '',
        markdownTable(['provider', 'measure', 'median (p50)', 'p99', 'min', 'max'], rows),
        '',
      ].join('\n'),
    );
  } finally {
    for (const plane of planes) await plane.close({ stopRouters: true }).catch(() => undefined);
    for (const provider of made) {
      for (const instance of await provider.list().catch(() => [])) await provider.destroy(instance.id, { graceMs: 0 }).catch(() => undefined);
      await provider.close().catch(() => undefined);
    }
    store.close();
    await rm(home, { recursive: true, force: true });
  }
}

main().catch((error: Error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error.message}\n`);
  process.exitCode = 1;
});

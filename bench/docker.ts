/**
 * A rolling update of 10 replicas of examples/hello from v1 to v2 on the Docker Engine, in one
 * run on this machine: through imago's docker provider (a ControlPlane driving a
 * DockerProvider, in-process, as bench/deploy.ts does on the process provider), and through a
 * one-node Docker Swarm (`docker service update --image`, start-first). Both update as many
 * instances at a time (imago's maxSurge = Swarm's --update-parallelism, maxUnavailable 0 /
 * start-first) and use the same health check timing; both run the same two images, loaded
 * into the engine from imago's store before anything is timed.
 *
 *   node --import tsx bench/docker.ts --runs 3        (npm run bench:docker -- --runs 3)
 *
 * Cases, alternating within every run (who goes first flips each run):
 *   A   imago, under constant `wrk -t2 -c16` load through imago's router (failed requests counted);
 *   A0  imago again without load (the same conditions as Swarm's case);
 *   B   Swarm, without load: this kernel has no IPVS, so Swarm's routing mesh does not answer
 *       and no port is published through it; only convergence time is compared.
 *
 * Needs dockerd, wrk (Debian package wrk), busybox and node on the host (the image's base).
 * Traffic goes only to 127.0.0.1 (wrk, imago's health probes) and into the bench's own
 * containers (Swarm's health checks, one `docker exec` check per run). Prints a markdown report
 * to stdout and to bench/results/docker-<date>.md; progress goes to stderr. Everything it
 * made is removed at the end: imago's containers (through the provider), the swarm service,
 * the swarm itself when the bench initialised it, the images it loaded, and its temp home.
 */
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { bake } from '../src/bake/baker.js';
import type { ServiceSpec } from '../src/config/types.js';
import { Providers } from '../src/providers/registry.js';
import { ControlPlane } from '../src/server/control-plane.js';
import { instancesOf, urlOf } from './lib/plane.js';
import type { Digest } from '../src/oci/digest.js';
import { DockerProvider } from '../src/providers/docker/docker-provider.js';
import { imageRef } from '../src/providers/docker/image-loader.js';
import { Label } from '../src/providers/provider.js';
import { ImageStore } from '../src/store/image-store.js';
import { runChild } from './lib/child.js';
import { DOCKER } from './lib/docker-runner.js';
import { failedCount, failures, helloConfig, LOAD_MARGIN_MS, underLoad, withVersion } from './lib/hello-deploy.js';
import { formatMs, markdownTable, summarise } from './lib/stats.js';
import { SwarmBench, type Convergence, type SwarmServiceOptions } from './lib/swarm.js';
import type { WrkResult } from './lib/wrk.js';

const USAGE = `usage: node --import tsx bench/docker.ts [--runs N] [--surge N] [--replicas N] [--health-interval MS]

  --runs N              repetitions of every case (default 3)
  --surge N             instances replaced at a time: imago's maxSurge (maxUnavailable 0) and
                        Swarm's --update-parallelism (start-first) (default 2)
  --replicas N          instances of the service (default 10)
  --health-interval MS  both health checks' interval, in ms (default 1000; Swarm's --update-monitor follows it)`;

const log = (line: string) => process.stderr.write(`${line}\n`);

/** The bench's options, checked. */
interface Options {
  runs: number;
  surge: number;
  replicas: number;
  intervalMs: number;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({ args: argv, options: { runs: { type: 'string' }, surge: { type: 'string' }, replicas: { type: 'string' }, 'health-interval': { type: 'string' }, help: { type: 'boolean' } } });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const positive = (name: string, text: string | undefined, fallback: number): number => {
    const n = Number(text ?? fallback);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: expected a positive integer, got "${text}"`);
    return n;
  };
  const options = {
    runs: positive('runs', values.runs, 3),
    surge: positive('surge', values.surge, 2),
    replicas: positive('replicas', values.replicas, 10),
    intervalMs: positive('health-interval', values['health-interval'], 1000),
  };
  if (options.surge > options.replicas) throw new Error(`--surge: expected at most --replicas (${options.replicas}), got ${options.surge}`);
  return options;
}

/** Settings both sides share. */
const HEALTH_TIMEOUT_MS = 1000;
const HEALTH_RETRIES = 3;
const START_PERIOD_MS = 10_000;
const STOP_GRACE_MS = 5000;
const DRAIN_TIMEOUT_MS = 10_000;
/** How long any deploy or service change may take before the bench fails. */
const CONVERGE_TIMEOUT_MS = 300_000;
/** A pause between cases, so one case's teardown does not fall into the next one's timing. */
const SETTLE_MS = 3000;

/** One imago rolling update: its time, and wrk's view when it ran under load. */
interface ImagoSample {
  firstMs: number;
  ms: number;
  wrk: WrkResult | undefined;
  load: number;
}

/** One Swarm update. */
interface SwarmSample {
  createMs: number;
  update: Convergence;
  load: number;
}

interface Run {
  order: string;
  a: ImagoSample;
  a0: ImagoSample;
  b: SwarmSample;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const helloDir = join(repoRoot, 'examples', 'hello');
  const home = await mkdtemp(join(tmpdir(), 'imago-bench-docker-'));
  const startedAt = new Date();
  const started = Date.now();
  const loadAtStart = loadavg()[0]!;
  const notes: string[] = [];
  let store: ImageStore | undefined;
  let provider: DockerProvider | undefined;
  let plane: ControlPlane | undefined;
  const swarm = new SwarmBench();
  const imagoServices = new Set<string>();
  const imagesToRemove: string[] = [];

  /** Scales a service to 0 through the control plane (its loop would replace anything destroyed behind its back). */
  const teardownImago = async (name: string) => {
    if (plane) await plane.scale(name, 0, 'bench');
    const left = await provider!.list({ [Label.service]: name });
    if (left.length > 0) throw new Error(`expected no instance of '${name}' after destroying them, got ${left.length}`);
    imagoServices.delete(name);
  };

  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    log('cleaning up: imago instances, swarm service and swarm, loaded images, temp home');
    const done: string[] = [];
    if (provider) {
      for (const name of [...imagoServices]) await teardownImago(name).catch((error: Error) => log(`  imago service ${name}: ${error.message}`));
      await plane?.close({ stopRouters: true }).catch((error: Error) => log(`  control plane close: ${error.message}`));
      // Anything else of this home's scope (there should be nothing).
      for (const instance of await provider.list().catch(() => [])) await provider.destroy(instance.id, { graceMs: 0 }).catch((error: Error) => log(`  destroy ${instance.id}: ${error.message}`));
      await provider.close();
    }
    done.push(...(await swarm.cleanup()));
    for (const ref of imagesToRemove) {
      const rmi = await runChild(DOCKER, ['rmi', ref]);
      done.push(rmi.code === 0 ? `removed image ${ref}` : `left image ${ref}: ${rmi.stderr.trim()}`);
    }
    store?.close();
    await rm(home, { recursive: true, force: true });
    for (const line of done) log(`  ${line}`);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    log(`${signal}: stopping`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const dockerVersion = (await runChild(DOCKER, ['version', '--format', '{{.Server.Version}} (client {{.Client.Version}})'])).stdout.trim();
    if (!dockerVersion) throw new Error(`failed to reach dockerd with '${DOCKER} version'`);
    const wrkVersion = /wrk (\S+)/.exec((await runChild('wrk', ['-v'])).stdout)?.[1] ?? 'unknown';
    log(`docker ${dockerVersion}, wrk ${wrkVersion}; home ${home}; ${JSON.stringify(options)}`);

    store = await ImageStore.open(home);
    const intervalText = `${options.intervalMs}ms`;
    const config = helloConfig(helloDir, {
      replicas: options.replicas,
      health: { http: '/healthz', interval: intervalText, timeout: `${HEALTH_TIMEOUT_MS}ms`, startPeriod: `${START_PERIOD_MS}ms`, unhealthyThreshold: HEALTH_RETRIES },
      strategy: 'blue-green',
      drainTimeout: `${DRAIN_TIMEOUT_MS}ms`,
      stopGrace: `${STOP_GRACE_MS}ms`,
      provider: 'docker',
    });
    const base = config.images.hello!;
    const blueGreen: ServiceSpec = config.services.hello!;
    const rolling: ServiceSpec = { ...blueGreen, strategy: { kind: 'rolling', maxSurge: { kind: 'count', value: options.surge }, maxUnavailable: { kind: 'count', value: 0 } } };

    // The two images, baked once, loaded into the engine before anything is timed (imago's
    // deploy then finds them loaded; Swarm runs them by image id, so it never tries a registry).
    provider = new DockerProvider(store);
    const digests: Record<string, Digest> = {};
    const imageIds: Record<string, string> = {};
    for (const v of ['1', '2']) {
      let t = performance.now();
      const digest = (digests[v] = (await bake({ store, spec: withVersion(base, v) })).digest);
      log(`baked v${v} ${digest} in ${formatMs(performance.now() - t)}`);
      const ref = imageRef(digest);
      const before = await runChild(DOCKER, ['image', 'inspect', '--format', '{{.Id}}', ref]);
      t = performance.now();
      await provider.loadImage(digest);
      if (before.code !== 0) imagesToRemove.push(ref);
      imageIds[v] = (await runChild(DOCKER, ['image', 'inspect', '--format', '{{.Id}}', ref])).stdout.trim();
      log(`  ${ref} = ${imageIds[v]}: ${before.code === 0 ? 'already on the engine' : `loaded in ${formatMs(performance.now() - t)}`}`);
    }

    notes.push(imagesToRemove.length === 2 ? 'Both images were loaded by the bench (before the timed part) and removed (`docker rmi`) at the end.' : `${2 - imagesToRemove.length} of the 2 images were already on the engine before the run (left there).`);
    const swarmState = await swarm.ensure();
    log(`swarm: ${swarmState === 'initialised' ? 'initialised (docker swarm init --advertise-addr 127.0.0.1); left at the end' : 'this node already manages a swarm: reused, not left'}`);
    notes.push(swarmState === 'initialised' ? 'The bench ran `docker swarm init --advertise-addr 127.0.0.1` at the start and `docker swarm leave --force` at the end.' : 'The node already managed a swarm: the bench reused it and did not leave it.');

    const expectLive = (what: string, r: { outcome: string; reason?: string }) => {
      if (r.outcome !== 'live') throw new Error(`${what}: expected the deploy to go live, got ${r.outcome}: ${r.reason}`);
    };

    /** Case A / A0: a fresh imago service of v1 (blue-green), then the timed rolling update to v2. */
    const imagoCase = async (name: string, withLoad: boolean): Promise<ImagoSample> => {
      const load = loadavg()[0]!;
      imagoServices.add(name);
      plane ??= await (async () => {
        const made = new ControlPlane(store!, Providers.of(provider!), 'bench');
        await made.start();
        return made;
      })();
      let t = performance.now();
      const first = await plane.deploy({ ...blueGreen, name }, digests['1']!, 'bench');
      const firstMs = performance.now() - t;
      expectLive(`${name}: first deploy`, first);
      const url = await urlOf(plane, name);
      const spec = { ...rolling, name };
      let ms: number;
      let wrk: WrkResult | undefined;
      if (withLoad) {
        const roll = await underLoad(url, () => plane!.deploy(spec, digests['2']!, 'bench'));
        expectLive(`${name}: rolling to v2`, roll.value);
        ms = roll.ms;
        wrk = roll.wrk;
      } else {
        t = performance.now();
        const roll = await plane.deploy(spec, digests['2']!, 'bench');
        ms = performance.now() - t;
        expectLive(`${name}: rolling to v2`, roll);
      }
      // Converged: exactly `replicas` containers, all v2, all routed, the router answering v2.
      const instances = await provider!.list({ [Label.service]: name });
      const v2 = instances.filter((i) => i.digest === digests['2'] && i.state === 'running').length;
      if (instances.length !== options.replicas || v2 !== options.replicas) throw new Error(`${name}: expected ${options.replicas} running v2 containers and nothing else, got ${v2} of ${instances.length}`);
      const routed = (await instancesOf(plane, name)).filter((i) => i.routed).length;
      if (routed !== options.replicas) throw new Error(`${name}: expected ${options.replicas} routed instances, got ${routed}`);
      const answer = (await (await fetch(url)).json()) as { version: string };
      if (answer.version !== '2') throw new Error(`${name}: expected the router to answer version 2, got ${answer.version}`);
      log(`  imago ${withLoad ? 'under load' : 'no load'}: first deploy ${formatMs(firstMs)}, rolling v1 → v2 ${formatMs(ms)}${wrk ? `; wrk ${wrk.requests} requests, ${Math.round(wrk.rps)} req/s, ${failures(wrk)}` : ''}`);
      await teardownImago(name);
      return { firstMs, ms, wrk, load };
    };

    /** Case B: a swarm service of v1, converged, then the timed `docker service update --image` to v2. */
    const swarmCase = async (name: string): Promise<SwarmSample> => {
      const load = loadavg()[0]!;
      const service: SwarmServiceOptions = {
        name,
        image: imageIds['1']!,
        replicas: options.replicas,
        env: { PORT: '8080', HOST: '0.0.0.0' },
        healthCmd: 'busybox wget -q -O- http://127.0.0.1:8080/healthz || exit 1',
        healthIntervalMs: options.intervalMs,
        healthTimeoutMs: HEALTH_TIMEOUT_MS,
        healthRetries: HEALTH_RETRIES,
        healthStartPeriodMs: START_PERIOD_MS,
        updateParallelism: options.surge,
        updateMonitorMs: options.intervalMs,
        stopGraceMs: STOP_GRACE_MS,
        label: `imago.bench=${name}`,
      };
      const created = await swarm.create(service, CONVERGE_TIMEOUT_MS);
      const before = JSON.parse(await swarm.execInOne(name, ['busybox', 'wget', '-q', '-O-', 'http://127.0.0.1:8080/'])) as { version: string };
      if (before.version !== '1') throw new Error(`${name}: expected a task to answer version 1, got ${before.version}`);
      const update = await swarm.update(name, imageIds['2']!, options.replicas, CONVERGE_TIMEOUT_MS);
      const after = JSON.parse(await swarm.execInOne(name, ['busybox', 'wget', '-q', '-O-', 'http://127.0.0.1:8080/'])) as { version: string };
      if (after.version !== '2') throw new Error(`${name}: expected a task to answer version 2 after the update, got ${after.version}`);
      log(`  swarm: create ${formatMs(created.ms)}, update v1 → v2 ${formatMs(update.ms)} (CLI returned after ${formatMs(update.cliMs)}; engine's UpdateStatus ${update.engineMs === undefined ? '?' : formatMs(update.engineMs)}; ${update.polls} polls)`);
      await swarm.remove(name);
      return { createMs: created.ms, update, load };
    };

    const runs: Run[] = [];
    for (let run = 1; run <= options.runs; run++) {
      const imagoFirst = run % 2 === 1;
      const order = imagoFirst ? 'A, A0, B' : 'B, A0, A';
      log(`run ${run}/${options.runs} (${order})`);
      const results: Partial<Run> = { order };
      const steps: Record<'a' | 'a0' | 'b', () => Promise<void>> = {
        a: async () => void (results.a = await imagoCase(`bench-docker-${run}-load`, true)),
        a0: async () => void (results.a0 = await imagoCase(`bench-docker-${run}-idle`, false)),
        b: async () => void (results.b = await swarmCase(`imago-bench-swarm-${run}`)),
      };
      for (const key of imagoFirst ? (['a', 'a0', 'b'] as const) : (['b', 'a0', 'a'] as const)) {
        await steps[key]();
        await sleep(SETTLE_MS);
      }
      runs.push(results as Run);
    }

    const report = renderReport({ options, runs, startedAt, tookMs: Date.now() - started, loadAtStart, dockerVersion, wrkVersion, notes, digests, imageIds });
    process.stdout.write(`${report}\n`);
    const resultsDir = join(repoRoot, 'bench', 'results');
    await mkdir(resultsDir, { recursive: true });
    const file = join(resultsDir, `docker-${startedAt.toISOString().slice(0, 16).replace(/:/g, '')}.md`);
    await writeFile(file, `${report}\n`);
    log(`wrote ${relative(process.cwd(), file)}`);
  } finally {
    await cleanup();
  }
}

function renderReport(r: {
  options: Options;
  runs: Run[];
  startedAt: Date;
  tookMs: number;
  loadAtStart: number;
  dockerVersion: string;
  wrkVersion: string;
  notes: string[];
  digests: Record<string, Digest>;
  imageIds: Record<string, string>;
}): string {
  const { options, runs } = r;
  const median = (xs: number[]) => summarise(xs)!.median;
  const min = (xs: number[]) => summarise(xs)!.min;
  const a = runs.map((x) => x.a.ms);
  const a0 = runs.map((x) => x.a0.ms);
  const b = runs.map((x) => x.b.update.ms);
  const engine = runs.map((x) => x.b.update.engineMs).filter((x): x is number => x !== undefined);
  const wrks = runs.map((x) => x.a.wrk!);
  const failed = wrks.reduce((sum, w) => sum + failedCount(w), 0);
  const requests = wrks.reduce((sum, w) => sum + w.requests, 0);
  const ratio = (x: number, y: number) => `${(x / y).toFixed(2)}×`;
  const n = options.replicas;
  const s = options.surge;
  const stats = (xs: number[]) => `${formatMs(median(xs))} / ${formatMs(min(xs))}`;

  const summary = markdownTable(
    ['case', `rolling update ${n} × v1 → v2, median / min`, 'Swarm / this (medians)', 'load', 'failed requests (wrk)'],
    [
      [`A. imago docker provider: rolling maxSurge ${s}, maxUnavailable 0`, stats(a), ratio(median(b), median(a)), `wrk -t2 -c16 through imago's router: ${requests} requests in all`, `${failed} of ${requests}`],
      [`A0. imago docker provider, the same, without load`, stats(a0), ratio(median(b), median(a0)), 'none', '–'],
      [`B. Docker Swarm: \`docker service update --image\`, start-first, parallelism ${s}`, stats(b), '–', 'none (no routing mesh here: no IPVS)', 'not measured'],
    ],
  );
  const perRun = markdownTable(
    ['run (order)', 'A: imago under load', 'A: wrk requests, req/s, failed', 'A0: imago, no load', 'B: Swarm (engine\'s own UpdateStatus time; CLI)', 'B / A', 'B / A0'],
    runs.map((x, i) => [
      `${i + 1} (${x.order})`,
      formatMs(x.a.ms),
      `${x.a.wrk!.requests}, ${Math.round(x.a.wrk!.rps)} req/s, ${failures(x.a.wrk!)}`,
      formatMs(x.a0.ms),
      `${formatMs(x.b.update.ms)} (${x.b.update.engineMs === undefined ? '?' : formatMs(x.b.update.engineMs)}; CLI ${formatMs(x.b.update.cliMs)})`,
      ratio(x.b.update.ms, x.a.ms),
      ratio(x.b.update.ms, x.a0.ms),
    ]),
  );
  const firsts = markdownTable(
    ['run', 'imago first deploy (blue-green, A / A0)', 'Swarm `service create` until converged', 'load average at A / A0 / B'],
    runs.map((x, i) => [String(i + 1), `${formatMs(x.a.firstMs)} / ${formatMs(x.a0.firstMs)}`, formatMs(x.b.createMs), `${x.a.load.toFixed(2)} / ${x.a0.load.toFixed(2)} / ${x.b.load.toFixed(2)}`]),
  );
  const args = process.argv.slice(2);
  const cpu = cpus();
  return [
    `### Docker rolling-update run, ${r.startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `Command: \`node --import tsx bench/docker.ts${args.length ? ` ${args.join(' ')}` : ''}\` (${runs.length} run(s), took ${formatMs(r.tookMs)}).`,
    `Machine: ${cpu.length} cores (${cpu[0]?.model.trim() ?? 'unknown CPU'}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Linux ${release()}, Node ${process.version}, docker ${r.dockerVersion} (${DOCKER}), wrk ${r.wrkVersion}; load average ${r.loadAtStart.toFixed(2)} at start, ${loadavg()[0]!.toFixed(2)} at end.`,
    '',
    summary,
    '',
    'A ratio above 1 means imago converged sooner than Swarm.',
    engine.length ? `Swarm's own clock (UpdateStatus.StartedAt → CompletedAt, no CLI start and no polling): median ${formatMs(median(engine))}, min ${formatMs(min(engine))}.` : '',
    '',
    'Every run:',
    '',
    perRun,
    '',
    firsts,
    '',
    `- Images: examples/hello baked twice (APP_VERSION 1 and 2; the example's run step left out), v1 ${r.digests['1']} (engine id ${r.imageIds['1']}), v2 ${r.digests['2']} (engine id ${r.imageIds['2']}); both loaded into the engine before anything was timed. Swarm runs them by image id (\`--no-resolve-image\`), so it never looks for a registry.`,
    `- imago: ControlPlane + DockerProvider in the bench's process, service provider \`docker\`, ${n} replicas, health http /healthz every ${options.intervalMs} ms (timeout ${HEALTH_TIMEOUT_MS} ms, unhealthy after ${HEALTH_RETRIES}, startPeriod ${START_PERIOD_MS / 1000} s; the first probe at start), drainTimeout ${DRAIN_TIMEOUT_MS / 1000} s, stopGrace ${STOP_GRACE_MS / 1000} s. Time: \`ControlPlane.deploy(v2)\` from call to return, live (new containers healthy and routed, old ones drained, stopped and removed); checked after: ${n} containers, all v2, all routed, the router answers version 2.`,
    `- A's load: \`wrk -t2 -c16\` at the router (127.0.0.1), started ${LOAD_MARGIN_MS} ms before the deploy call and stopped (SIGINT) ${LOAD_MARGIN_MS} ms after it returned; failed = non-2xx + socket errors (connect, read, write, timeout). wrk, the router, the health probes and the containers share the machine's cores.`,
    `- Swarm: one node, \`docker service create --replicas ${n} --env PORT=8080 --env HOST=0.0.0.0 --health-cmd "busybox wget -q -O- http://127.0.0.1:8080/healthz || exit 1" --health-interval ${options.intervalMs / 1000}s --health-timeout ${HEALTH_TIMEOUT_MS / 1000}s --health-retries ${HEALTH_RETRIES} --health-start-period ${START_PERIOD_MS / 1000}s --update-order start-first --update-parallelism ${s} --update-delay 0s --update-monitor ${options.intervalMs / 1000}s --stop-grace-period ${STOP_GRACE_MS / 1000}s\` (no published port), then \`docker service update --detach --no-resolve-image --image <v2>\`. Time: from starting that CLI until a poll (every 100 ms, engine API) saw UpdateStatus \`completed\`, ${n} tasks of v2 running and no other task alive. Swarm reports a task running only once its health check passed; the update monitor (${options.intervalMs / 1000} s) is part of Swarm's time, imago has no such wait.`,
    '- Not compared: requests during the Swarm update. This kernel has no IPVS, so the routing mesh does not answer; no port was published through it and no request was counted for Swarm.',
    `- Order: the three cases alternate within each run (A, A0, B, then B, A0, A, …), with ${SETTLE_MS / 1000} s between cases; each case starts from a fresh service of ${n} × v1 (not timed for the comparison; its time is in the last table) and ends by removing it.`,
    ...r.notes.map((note) => `- ${note}`),
  ].join('\n');
}

main().catch((error: Error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error.message}\n`);
  process.exitCode = 1;
});

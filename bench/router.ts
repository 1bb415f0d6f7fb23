/**
 * The data plane's speed: wrk through imago's routers against standalone HAProxy and nginx,
 * in front of the same 3 `hello` instances (examples/hello/app/server.js as plain node
 * processes on loopback), in one run, keep-alive on and off.
 *
 * Paths (their ids for `--paths` in brackets), each measured once per round, their order
 * rotated every round:
 * - direct [direct]: one instance, no proxy (the ceiling);
 * - imago haproxy [imago-haproxy]: HaproxyRouter, the default data plane (its own HAProxy,
 *   targets added through the runtime API, access log on);
 * - imago built-in [imago-builtin]: BuiltinRouter (the Node router as its own process);
 * - haproxy [haproxy]: a standalone HAProxy 2.6 (roundrobin, http-reuse always, no log);
 * - nginx [nginx]: a standalone nginx (least_conn, keepalive 64 upstream connections).
 *
 *   node --import tsx bench/router.ts [--rounds 3] [--seconds 5] [--connections 16]
 *     [--paths direct,imago-haproxy,imago-builtin,haproxy,nginx] [--keep-alive both|on|off]
 *
 * Each path's ratio is taken round by round against the standalone HAProxy of the same round
 * (which is always measured), and the table gives the median of those ratios with its 95%
 * confidence interval (the sign test's, from order statistics: it assumes nothing of the
 * noise's shape). With `--paths imago-haproxy` alone, every round is a pair run back to back,
 * the order alternating, so the machine's drift between the two is as small as it gets. Each
 * run also reads the CPU time the path's processes used (the proxy's master and workers; the
 * instance for "direct") and divides it by the requests answered.
 *
 * Every instance and every proxy runs in a session of its own (spawned detached), as imago's
 * routers must be to outlive their control plane, and as a supervisor runs a real HAProxy or
 * nginx. It matters on a machine where the load, the proxy and the instances share two
 * cores: Linux's autogroup scheduler (`/proc/sys/kernel/sched_autogroup_enabled`) shares CPU
 * fairly between sessions first, so a proxy alone in its session against peers and instances
 * in the bench's gets less: a standalone HAProxy in a session of its own measured 0.80x of
 * the same HAProxy in the bench's session (an experiment of 2026-12-01, 4 rounds).
 *
 * Needs haproxy, nginx and wrk (scripts/bench-deps.sh).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freeLoopbackPort as freePort } from '../src/controller/ports.js';
import { BuiltinRouter } from '../src/router/builtin/builtin-router.js';
import { haproxyVersion, HaproxyRouter } from '../src/router/haproxy/haproxy-router.js';
import type { RouterControl } from '../src/router/router-control.js';
import { waitForExit } from '../src/util/pids.js';
import { cpuSeconds } from './lib/cpu.js';
import { minimalHaproxyConfig, waitForAnswer } from './lib/peers.js';
import { markdownTable, ratioCell, summarise } from './lib/stats.js';
import { startWrk, type WrkResult } from './lib/wrk.js';

const log = (line: string) => process.stderr.write(`${line}\n`);
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');


/** The paths `--paths` may name, in the order they are measured in the first round. */
const PATH_IDS = ['direct', 'imago-haproxy', 'imago-builtin', 'haproxy', 'nginx'] as const;
type PathId = (typeof PATH_IDS)[number];

/** One way to the instances: its id, its name in the tables, its URL, the process whose CPU it costs. */
interface Path {
  id: PathId;
  name: string;
  url: string;
  pid: number;
}

/** One wrk run through one path. */
interface Run {
  wrk: WrkResult;
  /** CPU µs the path's processes used a request answered. */
  cpuUs: number;
}

/** Reads --paths: known ids, the standalone HAProxy always among them (every ratio is against it). */
function parsePaths(value: string | undefined): Set<PathId> {
  if (value === undefined) return new Set(PATH_IDS);
  const ids = value.split(',').map((id) => id.trim()).filter(Boolean);
  for (const id of ids) if (!(PATH_IDS as readonly string[]).includes(id)) throw new Error(`--paths: unknown path '${id}'; expected some of ${PATH_IDS.join(', ')}`);
  return new Set([...(ids as PathId[]), 'haproxy']);
}

/** Reads --keep-alive: which modes to measure. */
function parseKeepAlive(value: string | undefined): boolean[] {
  const modes = new Map([
    ['both', [true, false]],
    ['on', [true]],
    ['off', [false]],
  ]);
  const picked = modes.get(value ?? 'both');
  if (!picked) throw new Error(`--keep-alive: expected both, on or off, got '${value}'`);
  return picked;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: 'string' }, seconds: { type: 'string' }, connections: { type: 'string' }, paths: { type: 'string' }, 'keep-alive': { type: 'string' } } });
  const rounds = Number(values.rounds ?? 3);
  const seconds = Number(values.seconds ?? 5);
  const connections = Number(values.connections ?? 16);
  const wanted = parsePaths(values.paths);
  const keepAlives = parseKeepAlive(values['keep-alive']);
  if (!haproxyVersion()) throw new Error('haproxy is not installed: run scripts/bench-deps.sh');
  const dir = await mkdtemp(join(tmpdir(), 'imago-bench-router-'));
  const children: ChildProcess[] = [];
  const routers: RouterControl[] = [];
  try {
    // The same 3 instances behind every path.
    const ports = [await freePort(), await freePort(), await freePort()];
    for (const [i, port] of ports.entries()) {
      children.push(spawn(process.execPath, [join(repoRoot, 'examples', 'hello', 'app', 'server.js')], { env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', APP_VERSION: `i${i}` }, stdio: 'ignore', detached: true }));
    }
    for (const port of ports) await waitForAnswer(`http://127.0.0.1:${port}/`);

    const paths: Path[] = [];
    if (wanted.has('direct')) paths.push({ id: 'direct', name: 'direct (one instance)', url: `http://127.0.0.1:${ports[0]}/`, pid: children[0]!.pid! });
    for (const [id, name, make] of [
      ['imago-haproxy', 'imago haproxy', async () => new HaproxyRouter('bench', { host: '127.0.0.1', port: await freePort(), protocol: 'http' }, join(dir, 'haproxy-router'))],
      ['imago-builtin', 'imago built-in', async () => new BuiltinRouter('bench', { host: '127.0.0.1', port: await freePort(), protocol: 'http' }, join(dir, 'builtin-router'))],
    ] as const) {
      if (!wanted.has(id)) continue;
      const router = await make();
      routers.push(router);
      const address = await router.start();
      for (const [i, port] of ports.entries()) await router.route({ id: `i${i}`, host: '127.0.0.1', port, release: 1 });
      paths.push({ id, name, url: `http://127.0.0.1:${address.port}/`, pid: router.pid! });
    }

    const haproxyPort = await freePort();
    const haproxyCfg = join(dir, 'haproxy.cfg');
    await writeFile(haproxyCfg, minimalHaproxyConfig(haproxyPort, ports, 9000));
    const haproxy = spawn('haproxy', ['-f', haproxyCfg], { stdio: 'ignore', detached: true });
    children.push(haproxy);
    paths.push({ id: 'haproxy', name: 'haproxy standalone', url: `http://127.0.0.1:${haproxyPort}/`, pid: haproxy.pid! });

    if (wanted.has('nginx')) {
      const nginxPort = await freePort();
      const nginxConf = join(dir, 'nginx.conf');
      await writeFile(
        nginxConf,
        [
          'daemon off;',
          `pid ${join(dir, 'nginx.pid')};`,
          `error_log ${join(dir, 'nginx-error.log')};`,
          `worker_processes ${cpus().length};`,
          'events { worker_connections 4096; }',
          'http {',
          '  access_log off;',
          `  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};`,
          `  upstream hello { least_conn; ${ports.map((p) => `server 127.0.0.1:${p};`).join(' ')} keepalive 64; }`,
          `  server { listen 127.0.0.1:${nginxPort}; location / { proxy_pass http://hello; proxy_http_version 1.1; proxy_set_header Connection ""; } }`,
          '}',
          '',
        ].join('\n'),
      );
      const nginx = spawn('nginx', ['-c', nginxConf, '-p', dir], { stdio: 'ignore', detached: true });
      children.push(nginx);
      paths.push({ id: 'nginx', name: 'nginx standalone', url: `http://127.0.0.1:${nginxPort}/`, pid: nginx.pid! });
    }
    for (const path of paths) await waitForAnswer(path.url);

    const results = new Map<string, Run[]>();
    for (const keepAlive of keepAlives) {
      for (let round = 0; round < rounds; round++) {
        // Rotate who goes first, so the machine's drift falls on every path alike.
        const order = paths.map((_, i) => paths[(i + round) % paths.length]!);
        for (const path of order) {
          const before = cpuSeconds(path.pid);
          const wrk = await startWrk(path.url, seconds, { threads: 1, connections, latency: true, keepAlive }).done;
          const cpuUs = ((cpuSeconds(path.pid) - before) * 1e6) / Math.max(1, wrk.requests);
          const key = `${path.id}|${keepAlive}`;
          results.set(key, [...(results.get(key) ?? []), { wrk, cpuUs }]);
          log(`keep-alive ${keepAlive ? 'on ' : 'off'} round ${round + 1}/${rounds} ${path.name}: ${Math.round(wrk.rps)} req/s, p50 ${wrk.latencyMs?.p50} ms, p99 ${wrk.latencyMs?.p99} ms, ${cpuUs.toFixed(1)} µs CPU a request, errors ${errorsOf(wrk)}`);
        }
      }
    }

    const command = `node --import tsx bench/router.ts --rounds ${rounds} --seconds ${seconds} --connections ${connections}${values.paths ? ` --paths ${values.paths}` : ''}${values['keep-alive'] ? ` --keep-alive ${values['keep-alive']}` : ''}`;
    const lines = [`# Router bench, ${new Date().toISOString()}`, '', `\`${command}\` on ${cpus().length} cores; wrk -t1 -c${connections} -d${seconds}s --latency; ${haproxyVersion()}.`, ''];
    for (const keepAlive of keepAlives) {
      const peer = results.get(`haproxy|${keepAlive}`)!;
      const rows = paths.map((path) => {
        const runs = results.get(`${path.id}|${keepAlive}`)!;
        // The ratio of each round against standalone haproxy in the same round, then the median of those.
        const ratios = runs.map((r, i) => r.wrk.rps / peer[i]!.wrk.rps);
        const cpuRatios = runs.map((r, i) => r.cpuUs / peer[i]!.cpuUs);
        return [
          path.name,
          runs.map((r) => Math.round(r.wrk.rps).toLocaleString('en')).join(' / '),
          ratioCell(ratios),
          summarise(runs.map((r) => r.wrk.latencyMs?.p50 ?? NaN))!.median.toFixed(2),
          summarise(runs.map((r) => r.wrk.latencyMs?.p99 ?? NaN))!.median.toFixed(2),
          summarise(runs.map((r) => r.cpuUs))!.median.toFixed(1),
          // An instance's CPU against a proxy's says nothing: only the proxies are compared.
          path.id === 'direct' ? '–' : ratioCell(cpuRatios),
          String(runs.reduce((a, r) => a + errorsOf(r.wrk), 0)),
        ];
      });
      lines.push(
        `## Keep-alive ${keepAlive ? 'on' : 'off (Connection: close: a new connection per request)'}`,
        '',
        markdownTable(['path', `req/s (${rounds} rounds)`, 'vs haproxy standalone (median of rounds, 95% interval)', 'p50 ms', 'p99 ms', 'CPU µs a request', 'CPU vs haproxy standalone', 'errors'], rows),
        '',
      );
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    for (const router of routers) await router.stop().catch(() => undefined);
    for (const child of children) {
      child.kill('SIGTERM');
      if (child.pid) await waitForExit(child.pid, 5_000);
    }
    await rm(dir, { recursive: true, force: true });
  }
}

/** Non-2xx answers and socket errors of a wrk run. */
function errorsOf(run: WrkResult): number {
  return run.non2xx + Object.values(run.socketErrors).reduce((a, b) => a + b, 0);
}

await main();

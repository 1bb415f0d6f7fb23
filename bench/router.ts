/**
 * The data plane's speed: wrk through imago's routers against standalone HAProxy and nginx,
 * in front of the same 3 `hello` instances (examples/hello/app/server.js as plain node
 * processes on loopback), in one run, keep-alive on and off.
 *
 * Paths, each measured once per round, their order rotated every round:
 * - direct: one instance, no proxy (the ceiling);
 * - imago haproxy: HaproxyRouter, the default data plane (its own HAProxy, targets added
 *   through the runtime API, access log on);
 * - imago built-in: BuiltinRouter (the Node router as its own process);
 * - haproxy: a standalone HAProxy 2.6 (roundrobin, http-reuse always, no log);
 * - nginx: a standalone nginx (least_conn, keepalive 64 upstream connections).
 *
 *   node --import tsx bench/router.ts [--rounds 3] [--seconds 5] [--connections 16]
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
import { minimalHaproxyConfig, waitForAnswer } from './lib/peers.js';
import { markdownTable, summarise } from './lib/stats.js';
import { startWrk, type WrkResult } from './lib/wrk.js';

const log = (line: string) => process.stderr.write(`${line}\n`);
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');


async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: 'string' }, seconds: { type: 'string' }, connections: { type: 'string' } } });
  const rounds = Number(values.rounds ?? 3);
  const seconds = Number(values.seconds ?? 5);
  const connections = Number(values.connections ?? 16);
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

    const paths: Array<{ name: string; url: string }> = [{ name: 'direct (one instance)', url: `http://127.0.0.1:${ports[0]}/` }];
    for (const [name, router] of [
      ['imago haproxy', new HaproxyRouter('bench', { host: '127.0.0.1', port: await freePort(), protocol: 'http' }, join(dir, 'haproxy-router'))],
      ['imago built-in', new BuiltinRouter('bench', { host: '127.0.0.1', port: await freePort(), protocol: 'http' }, join(dir, 'builtin-router'))],
    ] as const) {
      routers.push(router);
      const address = await router.start();
      for (const [i, port] of ports.entries()) await router.route({ id: `i${i}`, host: '127.0.0.1', port, release: 1 });
      paths.push({ name, url: `http://127.0.0.1:${address.port}/` });
    }

    const haproxyPort = await freePort();
    const haproxyCfg = join(dir, 'haproxy.cfg');
    await writeFile(haproxyCfg, minimalHaproxyConfig(haproxyPort, ports, 9000));
    children.push(spawn('haproxy', ['-f', haproxyCfg], { stdio: 'ignore', detached: true }));
    paths.push({ name: 'haproxy standalone', url: `http://127.0.0.1:${haproxyPort}/` });

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
    children.push(spawn('nginx', ['-c', nginxConf, '-p', dir], { stdio: 'ignore', detached: true }));
    paths.push({ name: 'nginx standalone', url: `http://127.0.0.1:${nginxPort}/` });
    for (const path of paths) await waitForAnswer(path.url);

    const results = new Map<string, WrkResult[]>();
    for (const keepAlive of [true, false]) {
      for (let round = 0; round < rounds; round++) {
        // Rotate who goes first, so the machine's drift falls on every path alike.
        const order = paths.map((_, i) => paths[(i + round) % paths.length]!);
        for (const path of order) {
          const run = await startWrk(path.url, seconds, { threads: 1, connections, latency: true, keepAlive }).done;
          const key = `${path.name}|${keepAlive}`;
          results.set(key, [...(results.get(key) ?? []), run]);
          log(`keep-alive ${keepAlive ? 'on ' : 'off'} round ${round + 1}/${rounds} ${path.name}: ${Math.round(run.rps)} req/s, p50 ${run.latencyMs?.p50} ms, p99 ${run.latencyMs?.p99} ms, errors ${run.non2xx + Object.values(run.socketErrors).reduce((a, b) => a + b, 0)}`);
        }
      }
    }

    const lines = [`# Router bench, ${new Date().toISOString()}`, '', `\`node --import tsx bench/router.ts --rounds ${rounds} --seconds ${seconds} --connections ${connections}\` on ${cpus().length} cores; wrk -t1 -c${connections} -d${seconds}s --latency; ${haproxyVersion()}.`, ''];
    for (const keepAlive of [true, false]) {
      const peer = results.get(`haproxy standalone|${keepAlive}`)!;
      const rows = paths.map((path) => {
        const runs = results.get(`${path.name}|${keepAlive}`)!;
        // The ratio of each round against standalone haproxy in the same round, then the median of those.
        const ratios = runs.map((r, i) => r.rps / peer[i]!.rps);
        const errors = runs.reduce((a, r) => a + r.non2xx + Object.values(r.socketErrors).reduce((x, y) => x + y, 0), 0);
        return [
          path.name,
          runs.map((r) => Math.round(r.rps).toLocaleString('en')).join(' / '),
          `${summarise(ratios)!.median.toFixed(2)}×`,
          `${summarise(runs.map((r) => r.latencyMs?.p50 ?? NaN))!.median.toFixed(2)}`,
          `${summarise(runs.map((r) => r.latencyMs?.p99 ?? NaN))!.median.toFixed(2)}`,
          String(errors),
        ];
      });
      lines.push(`## Keep-alive ${keepAlive ? 'on' : 'off (Connection: close: a new connection per request)'}`, '', markdownTable(['path', `req/s (${rounds} rounds)`, 'vs haproxy standalone (median of rounds)', 'p50 ms', 'p99 ms', 'errors'], rows), '');
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

await main();

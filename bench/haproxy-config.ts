/**
 * What each part of imago's HAProxy config costs in keep-alive throughput: the router bench's
 * HAProxy data plane runs some 0.87-0.9x of a standalone HAProxy with a minimal config, and this
 * takes the difference apart. Every variant is a standalone HAProxy (master-worker, a session
 * of its own) in front of the same 3 `hello` instances, with imago's config as
 * `renderConfig` writes it (its servers static, as after a reload, access log to a file),
 * less one part at a time:
 *
 * - imago: the config as rendered (the access log keeps every request below 1,000 a second,
 *   else 1 in 16 and every failure);
 * - every request logged: the access log as before it was sampled, a line per request;
 * - no access log: no `log` lines nor the rules that pick its sample (imago reads latency and
 *   failures from it);
 * - no forwarded headers: no `option forwardfor`, no X-Forwarded-Proto;
 * - no L7 retries: no `retry-on`, no `disable-l7-retry` rule;
 * - 32 KiB buffers: `tune.bufsize 32768` (imago's config before it kept HAProxy's default 16 KiB);
 * - 8 KiB buffers: `tune.bufsize 8192`, which halves the L7 retries' copy of every GET but
 *   turns away requests with more than 7 KiB of headers (not imago's: see config.ts);
 * - plain servers: no health check, `observe layer4` or pool settings on the servers;
 * - none of these: all of the above removed at once;
 * - standalone: the router bench's minimal peer (roundrobin, http-reuse always).
 *
 *   node --import tsx bench/haproxy-config.ts [--rounds 5] [--seconds 5] [--connections 16]
 *     [--variants 'imago,no L7 retries']
 *
 * `--variants` measures only the ones it names (the standalone always, as every ratio is
 * against it). The table gives each variant's median ratio to the standalone of the same round
 * with its 95% confidence interval (order statistics; from 6 rounds).
 *
 * Besides throughput (noisy: the load, the proxy and the instances share the cores), each run
 * reads the CPU time HAProxy's master and workers used (utime + stime in /proc) and divides it
 * by the requests answered: the CPU cost of a request, which the scheduler's noise moves less.
 *
 * Needs haproxy and wrk (scripts/bench-deps.sh). Rounds rotate the order of the variants.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freeLoopbackPort as freePort } from '../src/controller/ports.js';
import { renderConfig, renderErrorFile, type AccessLogSampling, type HaproxyFiles } from '../src/router/haproxy/config.js';
import { haproxyVersion } from '../src/router/haproxy/haproxy-router.js';
import { cpuSeconds } from './lib/cpu.js';
import { minimalHaproxyConfig, waitForAnswer } from './lib/peers.js';
import { markdownTable, ratioCell } from './lib/stats.js';
import { startWrk } from './lib/wrk.js';

const log = (line: string) => process.stderr.write(`${line}\n`);
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Lines of `text` that match none of `patterns`. */
function without(text: string, ...patterns: RegExp[]): string {
  return text
    .split('\n')
    .filter((line) => !patterns.some((p) => p.test(line)))
    .join('\n');
}

const ACCESS_LOG = /^\s*(log(-format)? |option log-separate-errors|acl busy|http-request set-log-level)/;
const FORWARDED = /forwardfor|X-Forwarded-Proto/;
const L7_RETRIES = /retry-on|disable-l7-retry/;
const buffers = (bytes: number) => (text: string) => text.replace(/^global$/m, `global\n  tune.bufsize ${bytes}`);
const plainServers = (text: string) => text.replace(/^( {2}server \S+ \S+) .*$/gm, '$1');

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: 'string' }, seconds: { type: 'string' }, connections: { type: 'string' }, variants: { type: 'string' } } });
  const rounds = Number(values.rounds ?? 5);
  const seconds = Number(values.seconds ?? 5);
  const connections = Number(values.connections ?? 16);
  if (!haproxyVersion()) throw new Error('haproxy is not installed: run scripts/bench-deps.sh');
  const dir = mkdtempSync(join(tmpdir(), 'imago-bench-haproxy-config-'));
  const children: ChildProcess[] = [];
  // Sessions of their own, as imago's routers and instances run (see bench/router.ts).
  const start = (command: string, args: string[], env: Record<string, string>, stdout: number | 'ignore') => {
    const child = spawn(command, args, { detached: true, stdio: ['ignore', stdout, 'ignore'], env: { ...process.env, ...env } });
    children.push(child);
    return child;
  };
  try {
    const ports = [await freePort(), await freePort(), await freePort()];
    for (const port of ports) start(process.execPath, [join(repoRoot, 'examples', 'hello', 'app', 'server.js')], { PORT: String(port), HOST: '127.0.0.1' }, 'ignore');
    for (const port of ports) await waitForAnswer(`http://127.0.0.1:${port}/`);
    for (const status of [502, 503, 504] as const) writeFileSync(join(dir, `${status}.http`), renderErrorFile(status, 'web'));
    const threads = Math.min(4, cpus().length);
    const imago = (port: number, name: string, accessLog?: AccessLogSampling) => {
      const files: HaproxyFiles = { config: '', socket: join(dir, `${name}.sock`), pid: join(dir, `${name}.pid`), errorFiles: { 502: join(dir, '502.http'), 503: join(dir, '503.http'), 504: join(dir, '504.http') } };
      return renderConfig('web', { host: '127.0.0.1', port, protocol: 'http' }, files, { threads, maxconn: 4000, accessLog }, ports.map((p, i) => ({ name: `i${i}`, addr: '127.0.0.1', port: p, weight: 1 })));
    };
    // maxconn 4000 here and in imago's config: eight HAProxys at once stay inside the open-files limit.
    const standalone = (port: number) => minimalHaproxyConfig(port, ports, 4000);
    const all: Array<[string, (port: number, name: string) => string]> = [
      ['imago', imago],
      // Never busy: every request is written, as before the log was sampled.
      ['every request logged', (p, n) => imago(p, n, { everyBelow: 1_000_000_000, oneIn: 16 })],
      ['no access log', (p, n) => without(imago(p, n), ACCESS_LOG)],
      ['no forwarded headers', (p, n) => without(imago(p, n), FORWARDED)],
      ['no L7 retries', (p, n) => without(imago(p, n), L7_RETRIES)],
      ['32 KiB buffers', (p, n) => buffers(32768)(imago(p, n))],
      ['8 KiB buffers', (p, n) => buffers(8192)(imago(p, n))],
      ['plain servers', (p, n) => plainServers(imago(p, n))],
      ['none of these', (p, n) => plainServers(without(imago(p, n), ACCESS_LOG, FORWARDED, L7_RETRIES))],
      ['standalone', (p) => standalone(p)],
    ];
    const picked = values.variants?.split(',').map((v) => v.trim()).filter(Boolean);
    for (const name of picked ?? []) if (!all.some(([n]) => n === name)) throw new Error(`--variants: unknown variant '${name}'; expected some of ${all.map(([n]) => n).join(', ')}`);
    const variants = picked ? all.filter(([name]) => name === 'standalone' || picked.includes(name)) : all;
    const urls = new Map<string, string>();
    const masters = new Map<string, number>();
    for (const [i, [name, config]] of variants.entries()) {
      const port = await freePort();
      const file = join(dir, `v${i}.cfg`);
      writeFileSync(file, config(port, `v${i}`));
      const access = openSync(join(dir, `v${i}-access.log`), 'a');
      masters.set(name, start('haproxy', ['-W', '-f', file], {}, access).pid!);
      closeSync(access);
      urls.set(name, `http://127.0.0.1:${port}/`);
      await waitForAnswer(urls.get(name)!);
    }
    const names = [...urls.keys()];
    const results = new Map<string, number[]>(names.map((n) => [n, []]));
    const cpuPerRequest = new Map<string, number[]>(names.map((n) => [n, []]));
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < names.length; k++) {
        const name = names[(k + round) % names.length]!;
        const before = cpuSeconds(masters.get(name)!);
        const run = await startWrk(urls.get(name)!, seconds, { threads: 1, connections }).done;
        const us = ((cpuSeconds(masters.get(name)!) - before) * 1e6) / Math.max(1, run.requests);
        results.get(name)!.push(run.rps);
        cpuPerRequest.get(name)!.push(us);
        log(`round ${round + 1}/${rounds} ${name}: ${Math.round(run.rps)} req/s, ${us.toFixed(1)} µs of HAProxy CPU a request`);
      }
    }
    const peer = results.get('standalone')!;
    const peerCpu = cpuPerRequest.get('standalone')!;
    const rows = names.map((name) => {
      const rps = results.get(name)!;
      const us = cpuPerRequest.get(name)!;
      return [name, rps.map((r) => Math.round(r).toLocaleString('en')).join(' / '), ratioCell(rps.map((r, i) => r / peer[i]!)), us.map((u) => u.toFixed(1)).join(' / '), ratioCell(us.map((u, i) => u / peerCpu[i]!))];
    });
    const lines = [
      `# HAProxy config bench, ${new Date().toISOString()}`,
      '',
      `\`node --import tsx bench/haproxy-config.ts --rounds ${rounds} --seconds ${seconds} --connections ${connections}${values.variants ? ` --variants '${values.variants}'` : ''}\` on ${cpus().length} cores; wrk -t1 -c${connections} -d${seconds}s, keep-alive; HAProxy ${haproxyVersion()}.`,
      '',
      markdownTable(['variant', `req/s (${rounds} rounds)`, 'vs standalone (median of rounds, 95% interval)', 'HAProxy CPU µs a request', 'vs standalone'], rows),
      '',
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    for (const child of children) {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();

/**
 * The log store's speed: ingest and query.
 *
 * 1. Ingest: `--writers` processes (10) print lines of `--line-bytes` (100) to their own
 *    files as fast as they can for `--seconds` (5), as instances print to the files the
 *    providers give them, while a LogCollector moves what they wrote into a LogStore, pass
 *    after pass, as the control plane's does. Reported: what the writers printed (lines/s,
 *    MB/s: they never wait on the collector), what the collector stored meanwhile and by when
 *    it had caught up, and the longest single pass (how long the event loop, and so the API,
 *    was held at a time).
 *    Then the collector alone: 10 files of 50 MB already written, stored with nothing else
 *    running, pass after pass.
 * 2. Query: `--lines` (5,000,000) stored lines over 24 h of one service, then
 *    `--since 1h --grep X` (as `imago logs web --since 1h --grep X` asks), 5 times; the median.
 * 3. The cost of collection to an instance: an HTTP server (node, as examples/hello) that
 *    prints a line per request to its output file, as the providers give it one, measured with
 *    wrk (-t1 -c16, 5 s, `--rounds` rounds rotated): printing nothing; a line per request with
 *    nothing reading the file; a line per request while a LogCollector stores them.
 *
 *   node --import tsx bench/logs.ts [--writers 10] [--seconds 5] [--line-bytes 100] [--lines 5000000] [--rounds 3]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { LogCollector, type LogSource } from '../src/logs/collector.js';
import { readFileAt } from '../src/providers/output-files.js';
import { waitForAnswer } from './lib/peers.js';
import { LogStore, type LogLine } from '../src/logs/log-store.js';
import { markdownTable, summarise } from './lib/stats.js';

const log = (line: string) => process.stderr.write(`${line}\n`);

/** A writer: prints numbered lines of `bytes` to `file` until `seconds` pass, then says how many. */
const WRITER = `
const { openSync, writeSync } = require('node:fs');
const [file, seconds, bytes] = process.argv.slice(1);
const fd = openSync(file, 'a');
const pad = 'x'.repeat(Math.max(0, Number(bytes) - 20));
const end = Date.now() + Number(seconds) * 1000;
let n = 0;
while (Date.now() < end) {
  let chunk = '';
  for (let i = 0; i < 1000; i++) chunk += 'line ' + String(n++).padStart(12, '0') + ' ' + pad + '\\n';
  writeSync(fd, chunk);
}
process.stdout.write(String(n));
`;

/** A file a bench child writes, read as the providers' output files are. */
function fileSource(file: string, instance: string): LogSource {
  return { key: file, read: (position, buffer) => readFileAt(file, position, buffer), service: 'web', env: 'bench', release: 1, instance, stream: 'stdout', ended: false };
}

async function ingest(dir: string, writers: number, seconds: number, lineBytes: number): Promise<string[]> {
  const store = new LogStore(join(dir, 'ingest.db'));
  const collector = new LogCollector(store);
  const files = Array.from({ length: writers }, (_, i) => join(dir, `w${i}.log`));
  const sources: LogSource[] = files.map((file, i) => fileSource(file, `web-r1-${i}`));
  const children: ChildProcess[] = [];
  const printed: Array<Promise<number>> = [];
  const started = performance.now();
  for (const file of files) {
    const child = spawn(process.execPath, ['-e', WRITER, file, String(seconds), String(lineBytes)], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    printed.push(new Promise((resolve) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.on('exit', () => resolve(Number(out)));
    }));
  }
  let writersDone = false;
  const allPrinted = Promise.all(printed).then((counts) => {
    writersDone = true;
    return counts;
  });
  let stored = 0;
  let storedWhileWriting = 0;
  let longestPass = 0;
  let writersEndedAt = 0;
  try {
    for (;;) {
      const t = performance.now();
      const result = await collector.collect(sources);
      longestPass = Math.max(longestPass, performance.now() - t);
      stored += result.lines;
      if (!writersDone) storedWhileWriting = stored;
      else writersEndedAt ||= performance.now();
      if (writersDone && !result.more && result.lines === 0) break;
      // Yield as the control plane's timer does (at once when more waits).
      await new Promise((r) => setTimeout(r, result.more ? 0 : 200));
    }
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  }
  const caughtUp = performance.now();
  const counts = await allPrinted;
  const total = counts.reduce((a, b) => a + b, 0);
  const drops = store.drops().reduce((a, d) => a + d.lines, 0);
  const mb = (lines: number) => (lines * lineBytes) / 1e6;
  const writeSeconds = (writersEndedAt || caughtUp) / 1000 - started / 1000;
  const totalSeconds = (caughtUp - started) / 1000;
  store.close();
  if (stored + drops !== total) throw new Error(`printed ${total} lines, stored ${stored}, dropped ${drops}: some went missing`);
  return [
    `Ingest: ${writers} writers, ${lineBytes}-byte lines, ${seconds} s of printing.`,
    '',
    markdownTable(
      ['what', 'lines', 'lines/s', 'MB/s'],
      [
        ['printed by the writers', total.toLocaleString('en'), Math.round(total / seconds).toLocaleString('en'), (mb(total) / seconds).toFixed(1)],
        ['stored while they printed', storedWhileWriting.toLocaleString('en'), Math.round(storedWhileWriting / writeSeconds).toLocaleString('en'), (mb(storedWhileWriting) / writeSeconds).toFixed(1)],
        [`stored in all, caught up ${totalSeconds.toFixed(1)} s after the start`, stored.toLocaleString('en'), Math.round(stored / totalSeconds).toLocaleString('en'), (mb(stored) / totalSeconds).toFixed(1)],
        ['dropped (backlog past 64 MiB)', drops.toLocaleString('en'), '', ''],
      ],
    ),
    '',
    `Longest single pass (the event loop held): ${longestPass.toFixed(0)} ms.`,
    '',
  ];
}

/** The collector with the machine to itself: 10 files of `mb` MB each, already written. */
async function collectorAlone(dir: string, mb: number, lineBytes: number): Promise<string[]> {
  const line = `${'x'.repeat(lineBytes - 1)}\n`;
  const files = Array.from({ length: 10 }, (_, i) => join(dir, `alone-${i}.log`));
  const sources: LogSource[] = files.map((file, i) => fileSource(file, `web-r1-a${i}`));
  for (const file of files) writeFileSync(file, line.repeat(Math.floor((mb * 1e6) / lineBytes)));
  const store = new LogStore(join(dir, 'alone.db'));
  const collector = new LogCollector(store);
  const started = performance.now();
  let longest = 0;
  for (;;) {
    const t = performance.now();
    const more = (await collector.collect(sources)).more;
    longest = Math.max(longest, performance.now() - t);
    if (!more) break;
  }
  const seconds = (performance.now() - started) / 1000;
  const lines = store.count();
  store.close();
  return [`The collector alone: 10 files of ${mb} MB (${lines.toLocaleString('en')} lines) already written, stored in ${seconds.toFixed(1)} s: ${((lines * lineBytes) / 1e6 / seconds).toFixed(1)} MB/s, ${Math.round(lines / seconds).toLocaleString('en')} lines/s; longest pass ${longest.toFixed(0)} ms.`, ''];
}

function query(dir: string, lines: number): string[] {
  const store = new LogStore(join(dir, 'query.db'));
  const now = Date.now();
  const day = 24 * 3600_000;
  const batch: LogLine[] = [];
  const started = performance.now();
  for (let i = 0; i < lines; i++) {
    // Spread over 24 h, oldest first; one line in 1,000 has the needle.
    batch.push({ at: now - day + Math.floor((i / lines) * day), service: 'web', env: 'bench', release: 1 + (i % 3), instance: `web-r1-${i % 10}`, stream: 'output', text: `GET /items/${i} 200 ${i % 1000 === 0 ? 'NEEDLE ' : ''}${'x'.repeat(60)}` });
    if (batch.length === 50_000) {
      store.append(batch);
      batch.length = 0;
    }
  }
  store.append(batch);
  const loadSeconds = (performance.now() - started) / 1000;
  log(`  stored ${lines} lines in ${loadSeconds.toFixed(1)} s`);
  const times: number[] = [];
  let found = 0;
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    found = store.query({ service: 'web', since: now - 3600_000, grep: 'NEEDLE' }).length;
    times.push(performance.now() - t);
  }
  store.close();
  return [
    `Query: ${lines.toLocaleString('en')} lines over 24 h (stored at ${Math.round(lines / loadSeconds).toLocaleString('en')} lines/s in batches of 50,000), \`since: 1h, grep: NEEDLE\` (${found} lines match): median ${summarise(times)!.median.toFixed(0)} ms of 5 (${times.map((t) => t.toFixed(0)).join(' / ')} ms).`,
    '',
  ];
}

/** A server that answers as hello does, printing one access line per request when LOG=1. */
const SERVER = `
const { createServer } = require('node:http');
const log = process.env.LOG === '1';
createServer((req, res) => {
  if (log) console.log(new Date().toISOString() + ' ' + req.method + ' ' + req.url + ' 200 from ' + req.socket.remoteAddress);
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end('{"app":"hello"}\\n');
}).listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening'));
`;

async function collectionCost(dir: string, rounds: number): Promise<string[]> {
  const { freeLoopbackPort } = await import('../src/controller/ports.js');
  const { startWrk } = await import('./lib/wrk.js');
  const cases = [
    { name: 'no line per request', log: false, collect: false },
    { name: 'a line per request, nothing reading it', log: true, collect: false },
    { name: 'a line per request, collected into the store', log: true, collect: true },
  ];
  const servers: Array<{ name: string; url: string; child: ChildProcess; file: string; collect: boolean }> = [];
  const store = new LogStore(join(dir, 'cost.db'));
  const collector = new LogCollector(store);
  let collecting: LogSource[] = [];
  let timer: NodeJS.Timeout | undefined;
  const pass = async () => {
    const more = (await collector.collect(collecting)).more;
    timer = setTimeout(() => void pass(), more ? 0 : 200);
  };
  try {
    for (const [i, c] of cases.entries()) {
      const port = await freeLoopbackPort();
      const file = join(dir, `server-${i}.log`);
      const out = openSync(file, 'a');
      // A session of its own, as an instance is.
      const child = spawn(process.execPath, ['-e', SERVER], { env: { ...process.env, PORT: String(port), LOG: c.log ? '1' : '0' }, stdio: ['ignore', out, out], detached: true });
      closeSync(out);
      servers.push({ name: c.name, url: `http://127.0.0.1:${port}/`, child, file, collect: c.collect });
    }
    for (const srv of servers) await waitForAnswer(srv.url);
    const results = new Map<string, number[]>();
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < servers.length; k++) {
        const srv = servers[(k + round) % servers.length]!;
        collecting = srv.collect ? [fileSource(srv.file, 'web-r1-cost')] : [];
        clearTimeout(timer);
        void pass();
        const run = await startWrk(srv.url, 5, { threads: 1, connections: 16 }).done;
        // What the run printed is collected before the next run starts (not counted against it).
        collecting = srv.collect ? collecting : [];
        while ((await collector.collect(collecting)).more);
        results.set(srv.name, [...(results.get(srv.name) ?? []), run.rps]);
        log(`  round ${round + 1}/${rounds} ${srv.name}: ${Math.round(run.rps)} req/s`);
      }
    }
    const peer = results.get(cases[0]!.name)!;
    return [
      `Cost of collection to an instance (wrk -t1 -c16 -d5s, ${rounds} rounds rotated; the ratio is each round's against printing nothing in the same round, then the median):`,
      '',
      markdownTable(
        ['instance', `req/s (${rounds} rounds)`, 'vs no line'],
        cases.map((c) => {
          const runs = results.get(c.name)!;
          return [c.name, runs.map((r) => Math.round(r).toLocaleString('en')).join(' / '), `${summarise(runs.map((r, i) => r / peer[i]!))!.median.toFixed(2)}×`];
        }),
      ),
      '',
      `Lines stored while collecting: ${store.count().toLocaleString('en')}.`,
      '',
    ];
  } finally {
    clearTimeout(timer);
    for (const srv of servers) if (srv.child.pid) try { process.kill(srv.child.pid, 'SIGKILL'); } catch { /* gone */ }
    store.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { writers: { type: 'string' }, seconds: { type: 'string' }, 'line-bytes': { type: 'string' }, lines: { type: 'string' }, rounds: { type: 'string' } } });
  const rounds = Number(values.rounds ?? 3);
  const writers = Number(values.writers ?? 10);
  const seconds = Number(values.seconds ?? 5);
  const lineBytes = Number(values['line-bytes'] ?? 100);
  const lines = Number(values.lines ?? 5_000_000);
  const dir = await mkdtemp(join(tmpdir(), 'imago-bench-logs-'));
  try {
    log('ingest');
    const a = [...(await ingest(dir, writers, seconds, lineBytes)), ...(await collectorAlone(dir, 50, lineBytes))];
    log('query');
    const b = query(dir, lines);
    log('cost of collection');
    const c = await collectionCost(dir, rounds);
    const command = `node --import tsx bench/logs.ts --writers ${writers} --seconds ${seconds} --line-bytes ${lineBytes} --lines ${lines} --rounds ${rounds}`;
    process.stdout.write([`# Log store bench, ${new Date().toISOString()}`, '', `\`${command}\` on ${cpus().length} cores.`, '', ...a, ...b, ...c].join('\n'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();

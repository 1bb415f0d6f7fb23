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
 * 2. Query: `--lines` (5,000,000) stored lines over 24 h of one service, then
 *    `--since 1h --grep X` (as `imago logs web --since 1h --grep X` asks), 5 times; the median.
 *
 *   node --import tsx bench/logs.ts [--writers 10] [--seconds 5] [--line-bytes 100] [--lines 5000000]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LogCollector, type LogSource } from '../src/logs/collector.js';
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

async function ingest(dir: string, writers: number, seconds: number, lineBytes: number): Promise<string[]> {
  const store = new LogStore(join(dir, 'ingest.db'));
  const collector = new LogCollector(store);
  const sources: LogSource[] = Array.from({ length: writers }, (_, i) => ({ file: join(dir, `w${i}.log`), service: 'web', env: 'bench', release: 1, instance: `web-r1-${i}`, stream: 'output', ended: false }));
  const children: ChildProcess[] = [];
  const printed: Array<Promise<number>> = [];
  const started = performance.now();
  for (const s of sources) {
    const child = spawn(process.execPath, ['-e', WRITER, s.file, String(seconds), String(lineBytes)], { stdio: ['ignore', 'pipe', 'inherit'] });
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
      const result = collector.collect(sources);
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

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { writers: { type: 'string' }, seconds: { type: 'string' }, 'line-bytes': { type: 'string' }, lines: { type: 'string' } } });
  const writers = Number(values.writers ?? 10);
  const seconds = Number(values.seconds ?? 5);
  const lineBytes = Number(values['line-bytes'] ?? 100);
  const lines = Number(values.lines ?? 5_000_000);
  const dir = await mkdtemp(join(tmpdir(), 'imago-bench-logs-'));
  try {
    log('ingest');
    const a = await ingest(dir, writers, seconds, lineBytes);
    log('query');
    const b = query(dir, lines);
    const command = `node --import tsx bench/logs.ts --writers ${writers} --seconds ${seconds} --line-bytes ${lineBytes} --lines ${lines}`;
    process.stdout.write([`# Log store bench, ${new Date().toISOString()}`, '', `\`${command}\` on ${cpus().length} cores.`, '', ...a, ...b].join('\n'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();

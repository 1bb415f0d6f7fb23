import type { Command } from 'commander';
import { parseDuration } from '../../config/duration.js';
import { ImagoError } from '../../errors.js';
import { DEFAULT_LOG_LIMIT } from '../../logs/limits.js';
import type { LogDrops, StoredLogLine } from '../../logs/log-store.js';
import { resolveHome } from '../../store/home.js';
import { ApiClient } from '../api-client.js';
import { environmentOf, type GlobalOptions } from '../context.js';

/** How often `imago logs -f` asks for what is new. */
const FOLLOW_EVERY_MS = 250;

interface LogsOptions {
  release?: string;
  instance?: string;
  stream?: string;
  since?: string;
  until?: string;
  grep?: string;
  tail?: string;
  follow?: boolean;
  env?: string;
  json?: boolean;
}

/**
 * A time for `--since` / `--until`: a duration back from `now` ("1h", "30m", "2d") or a date
 * and time ("2026-12-01T17:00:00Z", "2026-12-01 17:00", UTC unless it names a zone). A clear
 * error names the flag.
 */
export function parseLogTime(flag: string, text: string, now = Date.now()): number {
  const ago = parseDuration(text, { max: 3650 * 86_400_000 });
  if (typeof ago === 'number') return now - ago;
  if (/^\d{4}-\d\d-\d\d/.test(text)) {
    // Without a zone, UTC: the times imago prints are UTC.
    const iso = text.replace(' ', 'T');
    const at = Date.parse(/T/.test(iso) && !/(Z|[+-]\d\d:?\d\d)$/.test(iso) ? `${iso}Z` : iso);
    if (!Number.isNaN(at)) return at;
  }
  throw new ImagoError(`${flag}: expected a duration back from now ("1h", "30m", "2d") or a date and time ("2026-12-01T17:00:00Z"), got '${text}'`, { exitCode: 2 });
}

function wholeOption(flag: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min) throw new ImagoError(`${flag}: expected a whole number from ${min}, got '${text}'`, { exitCode: 2 });
  return n;
}

/** One line as `imago logs` prints it: time, release, instance, text. */
export function formatLogLine(line: StoredLogLine): string {
  return `${new Date(line.at).toISOString()} r${line.release ?? '-'} ${line.instance} ${line.text}`;
}

/** Registers `imago logs`. */
export function registerLogs(program: Command): void {
  program
    .command('logs <service>')
    .description("what a service's instances printed, from the central log store (kept after the instances are gone)")
    .option('--release <version>', 'only lines of this release (its version, as imago history shows)')
    .option('--instance <id>', 'only lines of this instance')
    .option('--stream <name>', 'only lines the instances printed on this stream: stdout or stderr')
    .option('--since <time>', 'from this time: a duration back ("1h") or a date and time')
    .option('--until <time>', 'up to this time: a duration back ("10m") or a date and time')
    .option('--grep <text>', 'only lines that contain this text (a fixed string, case-sensitive)')
    .option('--tail <n>', 'only the last n lines (with -f: then follow)')
    .option('-f, --follow', 'keep printing new lines as they come, across deploys and replacements (Ctrl-C ends)')
    .option('--env <name>', "the service's environment (default: the config's defaultEnvironment, else the server's home one)")
    .option('--json', 'one JSON object per line')
    .action(async (service: string, opts: LogsOptions, cmd: Command) => {
      const client = await ApiClient.connect(resolveHome(cmd.optsWithGlobals<GlobalOptions>().home));
      const now = Date.now();
      const params = new URLSearchParams();
      const env = await environmentOf(cmd.optsWithGlobals<GlobalOptions>(), opts.env);
      if (env) params.set('env', env);
      const release = wholeOption('--release', opts.release, 1);
      if (release !== undefined) params.set('release', String(release));
      if (opts.instance) params.set('instance', opts.instance);
      if (opts.stream !== undefined) {
        if (opts.stream !== 'stdout' && opts.stream !== 'stderr') throw new ImagoError(`--stream: expected stdout or stderr, got '${opts.stream}'`, { exitCode: 2 });
        params.set('stream', opts.stream);
      }
      if (opts.since) params.set('since', String(parseLogTime('--since', opts.since, now)));
      if (opts.until) params.set('until', String(parseLogTime('--until', opts.until, now)));
      if (opts.grep) params.set('grep', opts.grep);
      const tail = wholeOption('--tail', opts.tail, 0);
      if (opts.follow && opts.until) throw new ImagoError('--follow and --until do not go together: a follow has no end', { exitCode: 2 });
      const print = (lines: StoredLogLine[]) => {
        if (lines.length === 0) return;
        const text = lines.map((l) => (opts.json ? JSON.stringify({ at: new Date(l.at).toISOString(), service: l.service, env: l.env, release: l.release, instance: l.instance, stream: l.stream, text: l.text }) : formatLogLine(l))).join('\n');
        process.stdout.write(`${text}\n`);
      };
      const warned = new Map<string, number>();
      const warnDrops = (drops: LogDrops[]) => {
        for (const d of drops) {
          if (warned.get(d.instance) === d.lines) continue;
          warned.set(d.instance, d.lines);
          process.stderr.write(`imago: ${d.lines} line(s) of ${d.instance} were dropped, not stored (${d.reason})\n`);
        }
      };
      const ask = (extra: Record<string, string>) => client.call<{ lines: StoredLogLine[]; lastId: number; drops: LogDrops[] }>('GET', `/v1/services/${encodeURIComponent(service)}/logs?${new URLSearchParams([...params, ...Object.entries(extra)])}`);
      // Without --tail, every line that matches, a page at a time (oldest first).
      let answer = await ask(tail !== undefined ? { tail: String(tail), limit: String(Math.max(1, tail)) } : {});
      print(answer.lines);
      warnDrops(answer.drops);
      let after = answer.lastId;
      if (tail === undefined) {
        while (answer.lines.length >= DEFAULT_LOG_LIMIT) {
          answer = await ask({ after: String(after) });
          print(answer.lines);
          after = answer.lastId;
        }
      }
      if (!opts.follow) return;
      for (;;) {
        await new Promise((resolve) => setTimeout(resolve, FOLLOW_EVERY_MS));
        answer = await ask({ after: String(after) });
        print(answer.lines);
        warnDrops(answer.drops);
        after = answer.lastId;
      }
    });
}

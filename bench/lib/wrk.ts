/** Runs `wrk` (Debian package wrk) against a loopback URL and parses its summary. */
import { spawn } from 'node:child_process';

/** What wrk reported. */
export interface WrkResult {
  requests: number;
  seconds: number;
  rps: number;
  non2xx: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
  /** Latency percentiles (ms) when run with `latency: true`. */
  latencyMs?: { p50: number; p75: number; p90: number; p99: number };
  /** wrk's own output, for the log. */
  raw: string;
}

/** A wrk run in progress: `stop()` sends SIGINT (wrk then prints its summary) and waits for it. */
export interface WrkRun {
  /** Resolves when wrk exits (on its own after -d, or after stop()). */
  done: Promise<WrkResult>;
  /** True once wrk exited on its own (its -d elapsed). */
  exitedEarly(): boolean;
  stop(): Promise<WrkResult>;
}

/**
 * Starts `wrk -t2 -c16 -d<seconds>s URL`; only 127.0.0.1 URLs are accepted. `latency` adds
 * the percentiles; `keepAlive: false` sends `Connection: close` (a new connection a request).
 */
export function startWrk(url: string, seconds: number, options: { threads?: number; connections?: number; latency?: boolean; keepAlive?: boolean } = {}): WrkRun {
  if (!/^http:\/\/127\.0\.0\.1:\d+\//.test(url)) throw new Error(`wrk: only http://127.0.0.1:PORT/ URLs, got ${url}`);
  const args = [`-t${options.threads ?? 2}`, `-c${options.connections ?? 16}`, `-d${seconds}s`, ...(options.latency ? ['--latency'] : []), ...(options.keepAlive === false ? ['-H', 'Connection: close'] : []), url];
  const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let exited = false;
  let stopped = false;
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<WrkResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      exited = true;
      try {
        resolve(parseWrk(out));
      } catch (error) {
        reject(new Error(`wrk ${args.join(' ')} (exit ${code}): ${(error as Error).message}\n${out}${err}`));
      }
    });
  });
  return {
    done,
    exitedEarly: () => exited && !stopped,
    stop: async () => {
      if (!exited) {
        stopped = true;
        child.kill('SIGINT');
      }
      return done;
    },
  };
}

/** Runs wrk for `seconds` and returns its summary. */
export async function runWrk(url: string, seconds: number): Promise<WrkResult> {
  return startWrk(url, seconds).done;
}

/** Parses wrk's text summary. */
export function parseWrk(text: string): WrkResult {
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m)/.exec(text);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text);
  if (!total || !rps) throw new Error('no summary in wrk output');
  const unit = { us: 1e-6, ms: 1e-3, s: 1, m: 60 }[total[3] as 'us' | 'ms' | 's' | 'm'];
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(text);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const percentile = (p: number) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm').exec(text);
    return m ? Number(m[1]) * { us: 1e-3, ms: 1, s: 1000 }[m[2] as 'us' | 'ms' | 's'] : undefined;
  };
  const [p50, p75, p90, p99] = [50, 75, 90, 99].map(percentile);
  return {
    ...(p50 !== undefined && p75 !== undefined && p90 !== undefined && p99 !== undefined ? { latencyMs: { p50, p75, p90, p99 } } : {}),
    requests: Number(total[1]),
    seconds: Number(total[2]) * unit,
    rps: Number(rps[1]),
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors: sock ? { connect: Number(sock[1]), read: Number(sock[2]), write: Number(sock[3]), timeout: Number(sock[4]) } : { connect: 0, read: 0, write: 0, timeout: 0 },
    raw: text,
  };
}

import { closeSync, fstatSync, openSync, readSync, truncateSync } from 'node:fs';
import { emptyHistogram, observeLatency, type LatencyHistogram } from '../router-control.js';
import { ACCESS_LEVEL, LOG_SEPARATOR } from './config.js';

/** One line of a router's access log. */
export interface AccessLine {
  /** The server's name (`<NOSRV>` when none took it). */
  server: string;
  /** Milliseconds to the answer's headers (TCP: the connection's life); -1 when there was none. */
  ms: number;
  /** The status sent (`-` in TCP mode). */
  status: string;
  /** HAProxy's termination state (`----` for a normal end). */
  termination: string;
  /** How many requests it stands for in the latency histograms (0: a failure outside the sample). */
  weight: number;
}

/** The syslog level in angle brackets at the start of a line (`format short`; the low 3 bits of a priority). */
const LEVEL = /^<(\d{1,3})>/;

/**
 * Parses one access line, `<level>server|ms|status|termination|oneIn` (see ACCESS_LEVEL for what
 * its level says), or `server|ms|status|termination` as a router started by an earlier imago
 * writes it (every request, weight 1); undefined for anything else, HAProxy's own messages
 * included.
 */
export function parseAccessLine(line: string): AccessLine | undefined {
  const text = line.trim();
  const prefix = LEVEL.exec(text);
  const parts = (prefix ? text.slice(prefix[0].length) : text).split(LOG_SEPARATOR);
  if (parts.length !== (prefix ? 5 : 4)) return undefined;
  const ms = Number(parts[1]);
  if (!Number.isFinite(ms)) return undefined;
  let weight = 1;
  if (prefix) {
    const level = Number(prefix[1]) & 7;
    const oneIn = Number(parts[4]);
    if (level === ACCESS_LEVEL.error) weight = 0;
    else if (level === ACCESS_LEVEL.sampled && Number.isInteger(oneIn) && oneIn >= 1) weight = oneIn;
    else if (level !== ACCESS_LEVEL.lowRate && level !== ACCESS_LEVEL.tcp) return undefined;
  }
  return { server: parts[0]!, ms, status: parts[2]!, termination: parts[3]!, weight };
}

/** The log is cut back to nothing once read past this size (HAProxy appends: only lines written between the read and the cut are lost). */
const MAX_LOG_BYTES = 64 * 1024 * 1024;

/**
 * The latency histograms of an HAProxy router, from the access log its worker appends to.
 * Read from where it was last read, on demand; a control plane that starts reads the whole
 * file again, so the histograms cover the time since the log was last cut back. Above
 * ACCESS_LOG_SAMPLING's rate the histograms are built from a random sample, each sampled
 * request counted as the requests it stands for; every failure is counted once.
 * HAProxy's timers are whole milliseconds: a time of t ms is counted as t + 1 (its upper end).
 */
export class AccessLog {
  private offset = 0;
  private partial = '';
  private readonly histograms = new Map<string, LatencyHistogram>();
  /** Requests that failed at the router (see `failedAtRouter`), since the log was last cut back. */
  failed = 0;

  constructor(private readonly file: string) {}

  /** The histogram of one server name (empty when it has had no answer). */
  latencyOf(server: string): LatencyHistogram {
    return this.histograms.get(server) ?? emptyHistogram();
  }

  /** Drops what is known of a server (it was removed). */
  forget(server: string): void {
    this.histograms.delete(server);
  }

  /** Reads the lines appended since the last read. */
  read(): void {
    let fd: number;
    try {
      fd = openSync(this.file, 'r');
    } catch {
      return; // no log yet
    }
    try {
      const size = fstatSync(fd).size;
      if (size < this.offset) {
        this.offset = 0; // cut back by someone else
        this.partial = '';
      }
      // More than a cut's worth unread (no control plane read it for a long while): skipped, not read in one go.
      if (size - this.offset > MAX_LOG_BYTES) {
        this.offset = size;
        this.partial = '';
      }
      const buffer = Buffer.alloc(1 << 20);
      while (this.offset < size) {
        const n = readSync(fd, buffer, 0, Math.min(buffer.length, size - this.offset), this.offset);
        if (n <= 0) break;
        this.offset += n;
        const text = this.partial + buffer.toString('utf8', 0, n);
        const lines = text.split('\n');
        this.partial = lines.pop() ?? '';
        for (const line of lines) this.take(line);
      }
    } finally {
      closeSync(fd);
    }
    if (this.offset > MAX_LOG_BYTES && this.partial === '') {
      truncateSync(this.file, 0);
      this.offset = 0;
      this.failed = 0;
    }
  }

  private take(line: string): void {
    const entry = parseAccessLine(line);
    if (!entry) return;
    if (failedAtRouter(entry)) this.failed++;
    if (entry.weight === 0 || entry.ms < 0 || entry.server.startsWith('<')) return;
    let histogram = this.histograms.get(entry.server);
    if (!histogram) {
      histogram = emptyHistogram();
      this.histograms.set(entry.server, histogram);
    }
    observeLatency(histogram, entry.ms + 1, entry.weight);
  }
}

/**
 * True when HAProxy ended the request for a reason on the server's side or its own: no server
 * took it (`<NOSRV>`, a 503), the server failed, closed or timed out (termination state `S…`
 * or `s…`), or HAProxy ran out of something (`P`, `I`, `R`). An answer the app itself gave, 5xx
 * included, ends `----`; a client that went away (`C…`, `c…`) is not the router's failure.
 */
export function failedAtRouter(entry: AccessLine): boolean {
  if (entry.server === '<NOSRV>' && entry.status === '503') return true;
  return /^[SsPIR]/.test(entry.termination);
}

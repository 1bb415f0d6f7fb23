import { isIP, connect as tcpConnect, type Socket } from 'node:net';
import { hostname as osHostname } from 'node:os';
import { connect as tlsConnect } from 'node:tls';
import { reasonOf } from '../errors.js';
import type { LogStore, StoredLogLine } from './log-store.js';
import { formatSyslog, octetFrame, type SyslogTarget } from './syslog.js';

/** How the forwarder paces itself. */
export interface ForwarderOptions {
  /** PEM of the CA that signs the server's certificate (TLS); absent: the system's CAs. */
  ca?: string | undefined;
  /** The HOSTNAME field (default: this machine's name). */
  hostname?: string;
  /** Lines per write (default 1,000). */
  batch?: number;
  /** After a broken connection, lines written within this long before it are sent again (default 2 s)… */
  resendMs?: number;
  /** …and at least this many of the last bytes written, whatever their age (default 4 MiB: more than the kernel's buffers on both ends hold). */
  resendBytes?: number;
  /** A connection that takes no data for this long while data waits is given up (default 30 s). */
  stallMs?: number;
  /** Reconnect back-off: from `min`, doubling to `max` (default 250 ms to 30 s). */
  backoff?: { minMs: number; maxMs: number };
  /** Between looks for new lines when all were sent (default 200 ms). */
  idleMs?: number;
}

/** What a forwarder has done, for status and `/metrics`. */
export interface ForwarderState {
  target: string;
  connected: boolean;
  /** The id of the last line handed to the connection. */
  position: number;
  sent: number;
  /** Lines sent again after a broken connection. */
  resent: number;
  /** Lines retention removed before they were sent. */
  dropped: number;
  lastError: string | undefined;
}

/**
 * Forwards every line of the log store, in order, to a syslog server: RFC 5424 messages over
 * TCP with octet-counting framing (RFC 6587), or over TLS (RFC 5425). The store is the buffer:
 * the forwarder keeps its position there (`syslog:<url>`), so a syslog server that is down, or a
 * control plane that restarts, loses nothing that retention still keeps. It reconnects with a
 * back-off. Plain syslog over TCP has no acknowledgements: the lines written just before a
 * connection broke may be lost on the way, so they are sent again (at least once; each carries
 * its id in structured data for a receiver to drop a repeat).
 */
export class SyslogForwarder {
  private socket: Socket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private writing = false;
  private backoff: number;
  /** Writes finished lately: when, their size, and the position before and after each (for the resend window). */
  private recent: Array<{ at: number; bytes: number; from: number; to: number }> = [];
  readonly state: ForwarderState;
  private readonly key: string;
  private readonly host: string;

  constructor(
    private readonly store: LogStore,
    private readonly target: SyslogTarget,
    private readonly options: ForwarderOptions = {},
  ) {
    this.key = `syslog:${target.url}`;
    this.host = options.hostname ?? osHostname();
    this.backoff = this.options.backoff?.minMs ?? 250;
    this.state = { target: target.url, connected: false, position: store.getTotal(this.key), sent: 0, resent: 0, dropped: 0, lastError: undefined };
  }

  /** Connects, and forwards from where the last forwarder to this target stopped. */
  start(): void {
    this.connect();
  }

  /** Stops: what was written is flushed to the connection, which is then ended. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    const socket = this.socket;
    if (!socket) return;
    await new Promise<void>((resolve) => {
      const done = setTimeout(() => {
        socket.destroy();
        resolve();
      }, 2_000);
      done.unref();
      socket.end(() => {
        clearTimeout(done);
        resolve();
      });
    });
  }

  private connect(): void {
    if (this.closed) return;
    const { host, port, tls } = this.target;
    // SNI carries a name, never an address (RFC 6066); the certificate is checked against either.
    const socket = tls ? tlsConnect({ host, port, ...(isIP(host) ? {} : { servername: host }), ...(this.options.ca ? { ca: this.options.ca } : {}) }) : tcpConnect({ host, port });
    this.socket = socket;
    socket.setNoDelay(true);
    // A peer that dies without a word (a host gone, a network cut) is found by keepalive, and a
    // write that takes no data for stallMs gives the connection up.
    socket.setKeepAlive(true, 10_000);
    socket.setTimeout(this.options.stallMs ?? 30_000, () => {
      if (this.writing) socket.destroy(new Error(`no data taken for ${Math.round((this.options.stallMs ?? 30_000) / 1000)}s`));
    });
    socket.once(tls ? 'secureConnect' : 'connect', () => {
      this.state.connected = true;
      this.state.lastError = undefined;
      this.backoff = this.options.backoff?.minMs ?? 250;
      this.pump();
    });
    socket.on('data', () => undefined); // a syslog server says nothing; read and drop whatever it does
    socket.on('error', (error) => {
      const said = `${this.target.url}: ${reasonOf(error)}`;
      // Each new failure once on the server's stderr (its log); a reconnect loop repeats none.
      if (said !== this.state.lastError) process.stderr.write(`imago: syslog forwarding: ${said}\n`);
      this.state.lastError = said;
    });
    socket.once('close', () => this.broken(socket));
  }

  /** The connection is gone: the lines of the resend window go again, and a new connection is tried after the back-off. */
  private broken(socket: Socket): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    this.state.connected = false;
    this.writing = false;
    clearTimeout(this.timer);
    const unsure = this.resendFrom();
    if (unsure) {
      this.state.resent += this.state.position - unsure.from;
      this.setPosition(unsure.from);
    }
    this.recent = [];
    if (this.closed) return;
    const wait = this.backoff;
    this.backoff = Math.min(this.backoff * 2, this.options.backoff?.maxMs ?? 30_000);
    this.timer = setTimeout(() => this.connect(), wait);
    this.timer.unref();
  }

  /** Writes the next batch when the connection can take it; looks again later when all were sent. */
  private pump(): void {
    if (this.closed || !this.socket || !this.state.connected || this.writing) return;
    clearTimeout(this.timer);
    let lines: StoredLogLine[];
    try {
      lines = this.store.after(this.state.position, this.options.batch ?? 1_000);
    } catch (error) {
      this.state.lastError = reasonOf(error);
      lines = [];
    }
    if (lines.length === 0) {
      this.timer = setTimeout(() => this.pump(), this.options.idleMs ?? 200);
      this.timer.unref();
      return;
    }
    // Lines cut by retention before they were sent: counted, never silently skipped.
    const first = lines[0]!.id;
    if (this.state.position > 0 && first > this.state.position + 1) this.state.dropped += first - this.state.position - 1;
    const chunk = lines.map((l) => octetFrame(formatSyslog(l, this.host))).join('');
    const socket = this.socket;
    const last = lines.at(-1)!.id;
    this.writing = true;
    socket.write(chunk, (error) => {
      if (this.socket !== socket) return;
      this.writing = false;
      if (error) return; // 'close' follows, and rewinds
      this.recent.push({ at: Date.now(), bytes: Buffer.byteLength(chunk), from: this.state.position, to: last });
      this.trimRecent();
      this.state.sent += lines.length;
      this.setPosition(last);
      setImmediate(() => this.pump());
    });
  }

  /** The oldest write of the resend window: those of the last resendMs, and at least the last resendBytes. */
  private resendFrom(): { from: number } | undefined {
    const since = Date.now() - (this.options.resendMs ?? 2_000);
    const minBytes = this.options.resendBytes ?? 4 * 1024 * 1024;
    let bytes = 0;
    let first: { from: number } | undefined;
    for (let i = this.recent.length - 1; i >= 0; i--) {
      const r = this.recent[i]!;
      if (r.at < since && bytes >= minBytes) break;
      first = r;
      bytes += r.bytes;
    }
    return first;
  }

  /** Forgets writes older than the resend window needs. */
  private trimRecent(): void {
    const since = Date.now() - (this.options.resendMs ?? 2_000);
    const minBytes = this.options.resendBytes ?? 4 * 1024 * 1024;
    let bytes = this.recent.reduce((a, r) => a + r.bytes, 0);
    while (this.recent.length > 1 && this.recent[0]!.at < since && bytes - this.recent[0]!.bytes >= minBytes) bytes -= this.recent.shift()!.bytes;
  }

  private setPosition(id: number): void {
    this.state.position = id;
    try {
      this.store.setTotal(this.key, id);
    } catch (error) {
      this.state.lastError = reasonOf(error);
    }
  }
}

import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { request } from 'undici';
import type { ServiceHealth } from '../config/types.js';
import { ImagoError } from '../errors.js';
import { loopbackAddress } from './loopback.js';

/** What one probe saw. A failure has the same shape as a success. */
export interface ProbeResult {
  ok: boolean;
  /** When the probe started (ms since the epoch): the start-period rule reads this. */
  at: number;
  /** How long it took, in whole milliseconds. */
  ms: number;
  /** One line for people: `GET /healthz → 200 in 3ms`, `TCP 127.0.0.1:5432 → connection refused`. */
  detail: string;
}

/** Where an instance answers: a loopback host and a port. */
export interface ProbeAddress {
  host: string;
  port: number;
}

/** The check to run: an HTTP path, a command inside the instance, or a TCP connect. */
export type HealthCheck = ServiceHealth['check'];

/**
 * Runs a command inside the instance: the provider's exec, passed in by the caller. `signal`
 * aborts when the probe times out or is stopped: the exec should then kill the command.
 */
export type RunCommand = (command: string | string[], signal: AbortSignal) => Promise<{ exitCode: number; output: string }>;

/** What the caller may add to a probe. */
export interface ProbeOptions {
  /** Needed for `command` checks; without it they fail (see NO_EXEC). */
  runCommand?: RunCommand;
  /** Aborts the probe (it then fails with `→ aborted`). */
  signal?: AbortSignal;
}

/** The detail of a command check when the caller passed no exec. */
export const NO_EXEC = "command checks need the provider's exec (not available)";

/** How a probe ended, before timing is added: `timed` appends ` in <ms>ms` to `text`. */
interface Outcome {
  ok: boolean;
  text: string;
  timed?: boolean;
}

/**
 * Probes an instance once, within `timeoutMs`. Never rejects for what the instance does
 * (refused, timed out, 500, exit 1 are all `ok: false` results); rejects with an ImagoError,
 * before any connection, when `address` is not loopback or the port is not a port.
 *
 * @example
 * const r = await probeOnce({ kind: 'http', path: '/healthz' }, { host: '127.0.0.1', port: 8080 }, 1000);
 * // { ok: true, at: 1718000000000, ms: 3, detail: 'GET /healthz → 200 in 3ms' }
 */
export async function probeOnce(check: HealthCheck, address: ProbeAddress, timeoutMs: number, options: ProbeOptions = {}): Promise<ProbeResult> {
  const ip = loopbackAddress(address.host);
  if (!Number.isInteger(address.port) || address.port < 1 || address.port > 65_535) {
    throw new ImagoError(`health probe port: expected an integer from 1 to 65535, got ${String(address.port)}`);
  }
  const at = Date.now();
  const started = performance.now();
  if (check.kind === 'command' && !options.runCommand) return { ok: false, at, ms: 0, detail: NO_EXEC };

  const work = check.kind === 'http' ? getPath(ip, address.port, check.path) : check.kind === 'tcp' ? connectTcp(ip, address.port) : runIn(options.runCommand!, check.command);
  const outcome = await bounded(timeoutMs, options.signal, work);
  const ms = Math.round(performance.now() - started);
  return { ok: outcome.ok, at, ms, detail: `${labelOf(check, ip, address.port)} → ${outcome.text}${outcome.timed ? ` in ${ms}ms` : ''}` };
}

/** The left side of a detail line: what was probed. */
function labelOf(check: HealthCheck, ip: string, port: number): string {
  if (check.kind === 'http') return `GET ${pathOf(check.path)}`;
  if (check.kind === 'tcp') return `TCP ${hostPort(ip, port)}`;
  return `command '${typeof check.command === 'string' ? check.command : check.command.join(' ')}'`;
}

/** An HTTP GET that passes on 2xx and 3xx (redirects are not followed); the body is discarded. */
function getPath(ip: string, port: number, path: string): (signal: AbortSignal) => Promise<Outcome> {
  return async (signal) => {
    const res = await request(`http://${hostPort(ip, port)}${pathOf(path)}`, {
      method: 'GET',
      signal,
      reset: true, // one connection per probe: nothing pooled, nothing left open between probes
      headers: { 'user-agent': 'imago-health' },
    });
    await res.body.dump();
    return { ok: res.statusCode >= 200 && res.statusCode < 400, text: String(res.statusCode), timed: true };
  };
}

/** A TCP connect that passes once the connection is established, then closes it. */
function connectTcp(ip: string, port: number): (signal: AbortSignal) => Promise<Outcome> {
  return (signal) =>
    new Promise((resolve, reject) => {
      const socket = connect({ host: ip, port });
      signal.addEventListener('abort', () => socket.destroy(), { once: true });
      // A port proxy (Docker's, for one) accepts for an app that is not listening yet, then
      // hangs up at once: a connection must stay open a moment to count.
      let watch: NodeJS.Timeout | undefined;
      socket.resume(); // read (and drop) what it sends, so a hang-up is seen
      socket.once('connect', () => {
        watch = setTimeout(() => {
          socket.destroy();
          resolve({ ok: true, text: 'connected', timed: true });
        }, TCP_HOLD_MS);
      });
      socket.once('end', () => {
        clearTimeout(watch);
        socket.destroy();
        resolve({ ok: false, text: 'accepted, then closed at once (is anything listening behind a port proxy?)', timed: true });
      });
      socket.once('error', (error) => {
        clearTimeout(watch);
        reject(error);
      });
    });
}

/** How long a TCP check holds its connection open before it counts (see connectTcp). */
const TCP_HOLD_MS = 50;

/** A command inside the instance, through the provider's exec: passes on exit 0. */
function runIn(runCommand: RunCommand, command: string | string[]): (signal: AbortSignal) => Promise<Outcome> {
  return async (signal) => {
    const { exitCode, output } = await runCommand(command, signal);
    const tail = output.replace(/\s+/g, ' ').trim().slice(-200);
    return { ok: exitCode === 0, text: exitCode === 0 || !tail ? `exit ${exitCode}` : `exit ${exitCode}: ${tail}`, timed: true };
  };
}

/** Runs `work` until it settles, `timeoutMs` passes or `outer` aborts, whichever comes first. */
function bounded(timeoutMs: number, outer: AbortSignal | undefined, work: (signal: AbortSignal) => Promise<Outcome>): Promise<Outcome> {
  return new Promise((resolve) => {
    const controller = new AbortController();
    const onAbort = (): void => stopWith('aborted');
    const timer = setTimeout(() => stopWith(`timed out after ${timeoutMs}ms`), timeoutMs);
    timer.unref();
    function finish(outcome: Outcome): void {
      clearTimeout(timer);
      outer?.removeEventListener('abort', onAbort);
      resolve(outcome); // the first outcome wins; later ones are ignored
    }
    function stopWith(text: string): void {
      finish({ ok: false, text });
      controller.abort();
    }
    if (outer?.aborted) return stopWith('aborted');
    outer?.addEventListener('abort', onAbort, { once: true });
    work(controller.signal).then(finish, (error: unknown) => finish({ ok: false, text: describeError(error) }));
  });
}

/** A connection error in a few words: `connection refused`, `connection reset`, else its message. */
function describeError(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'connection reset';
  return error instanceof Error ? error.message : String(error);
}

/** `host:port`, with brackets around an IPv6 host. */
function hostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** The request path, with a leading slash. */
function pathOf(path: string): string {
  return path.startsWith('/') ? path : `/${path}`;
}

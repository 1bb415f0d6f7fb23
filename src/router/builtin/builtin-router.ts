import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from 'undici';
import { reasonOf, RouterError } from '../../errors.js';
import { alive, commandLine, endProcess, killTree, readPidFile } from '../../util/pids.js';
import { tailLines } from '../../util/tail.js';
import type { ListenSpec } from '../engine/engine.js';
import { checkSocketPath, drainBy, type RouterControl, type RouterSnapshot, type RouterStats, type RouterTarget } from '../router-control.js';
import { checkServedAs } from '../served-as.js';
import { readTlsPair } from '../tls.js';
import { CONFIG_FILE, CONTROL_SOCKET, EXIT, LOG_FILE, PID_FILE, type BuiltinConfig, type BuiltinHealth } from './protocol.js';

/** How long a router process may take to serve after it is started. */
const START_TIMEOUT_MS = 10_000;
/** How long one control call may take. */
const CALL_TIMEOUT_MS = 5_000;
/** The router process's entry (main.ts under tsx, main.js once built). */
const MAIN = fileURLToPath(new URL(`./main${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

/**
 * The built-in data plane as a process of its own, one per service, in `folder`: started
 * detached (its own session, so a signal to the control plane's group does not reach it),
 * steered over a unix socket, adopted by the next control plane through its pid file, and
 * left serving when the control plane stops or dies.
 */
export class BuiltinRouter implements RouterControl {
  readonly kind = 'built-in';
  private current: number | undefined;
  private client: Client | undefined;

  constructor(
    readonly service: string,
    private listen: ListenSpec,
    private readonly folder: string,
  ) {}

  /** The router process's pid, once started or adopted. */
  get pid(): number | undefined {
    return this.current;
  }

  /** Adopts the router process that serves this service, or starts one. */
  async start(): Promise<{ host: string; port: number }> {
    checkSocketPath(this.service, join(this.folder, CONTROL_SOCKET));
    mkdirSync(this.folder, { recursive: true, mode: 0o700 });
    const address = (await this.adopt()) ?? (await this.spawn());
    // Port 0 meant "any" once: a router started again later serves where this one does.
    this.listen = { ...this.listen, port: address.port };
    return address;
  }

  async route(target: RouterTarget): Promise<void> {
    await this.call('PUT', `/v1/targets/${encodeURIComponent(target.id)}`, target);
  }

  /** Tells the router process to serve `listen` (see RouterEngine.relisten); it rewrites its own router.json once it does. */
  async relisten(listen: ListenSpec): Promise<{ host: string; port: number }> {
    // Bad TLS files are the caller's mistake, said here before the router is asked.
    if (listen.tls) readTlsPair(this.service, listen.tls);
    const answer = (await this.call('PUT', '/v1/listen', listen)) as { host: string; port: number };
    this.listen = { ...listen, port: answer.port };
    return { host: answer.host, port: answer.port };
  }

  async unroute(id: string): Promise<void> {
    await this.call('POST', `/v1/targets/${encodeURIComponent(id)}/unroute`);
  }

  drain(id: string, timeoutMs: number): Promise<number> {
    return drainBy(this, id, timeoutMs);
  }

  async forget(id: string): Promise<void> {
    await this.call('DELETE', `/v1/targets/${encodeURIComponent(id)}`);
  }

  async setWeights(weights: Record<string, number> | undefined): Promise<void> {
    await this.call('PUT', '/v1/weights', weights ? { weights } : {});
  }

  snapshot(): Promise<RouterSnapshot> {
    return this.call('GET', '/v1/snapshot') as Promise<RouterSnapshot>;
  }

  stats(): Promise<RouterStats> {
    return this.call('GET', '/v1/stats') as Promise<RouterStats>;
  }

  /** Lets go: the process serves on. */
  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    await client?.close().catch(() => undefined);
  }

  /** Stops the router process (asked first, then killed by its pid). */
  async stop(): Promise<void> {
    await this.stopRunning();
  }

  /** Stops the router process of this folder when one runs; true when there was one. */
  async stopRunning(): Promise<boolean> {
    // The pid file, checked again: the process once adopted may be gone, and its pid reused.
    const pid = this.runningPid();
    if (pid !== undefined) await endProcess(pid, () => this.call('POST', '/v1/stop').then(() => undefined));
    this.current = undefined;
    await this.close();
    return pid !== undefined;
  }

  /** The pid in the pid file, when that process is a built-in router (not a reused pid). */
  runningPid(): number | undefined {
    const pid = readPidFile(join(this.folder, PID_FILE));
    if (pid === undefined || !alive(pid)) return undefined;
    // This folder's router: another service's (a pid reused after a reboot) is not this one.
    const args = commandLine(pid);
    return args.some((arg) => arg === MAIN || /router\/builtin\/main\.(js|ts)$/.test(arg)) && args.includes(this.folder) ? pid : undefined;
  }

  /** The running router, when it serves this service where it should. */
  private async adopt(): Promise<{ host: string; port: number } | undefined> {
    const pid = this.runningPid();
    if (pid === undefined) return undefined;
    let health: BuiltinHealth;
    try {
      health = (await this.call('GET', '/v1/health')) as BuiltinHealth;
    } catch (error) {
      // It runs but does not answer (hung, or its socket was removed): it goes, a new one starts.
      await killTree(pid);
      return undefined;
    }
    checkServedAs(health, this.service, this.listen, `pid ${pid}`);
    this.current = pid;
    return { host: health.listen.host, port: health.listen.port };
  }

  private async spawn(): Promise<{ host: string; port: number }> {
    // Bad TLS files are the caller's mistake, said before any process starts.
    if (this.listen.tls) readTlsPair(this.service, this.listen.tls);
    const config: BuiltinConfig = { service: this.service, listen: this.listen };
    writeFileSync(join(this.folder, CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
    const logFile = join(this.folder, LOG_FILE);
    const log = openSync(logFile, 'a', 0o600);
    const args = MAIN.endsWith('.ts') ? ['--import', 'tsx', MAIN, this.folder] : [MAIN, this.folder];
    const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', log, log], env: { ...process.env, NODE_OPTIONS: '' } });
    closeSync(log);
    child.unref();
    let exited: number | null | undefined;
    child.once('exit', (code, signal) => (exited = code ?? (signal ? 128 : 1)));
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (exited !== undefined) {
        const why = tailLines(logFile, 1)[0] ?? `exit code ${exited}`;
        throw new RouterError(exited === EXIT.inUse || exited === EXIT.badInput ? why : `the router of service '${this.service}' failed to start: ${why}`, { inUse: exited === EXIT.inUse, badInput: exited === EXIT.badInput });
      }
      if (readPidFile(join(this.folder, PID_FILE)) === child.pid) {
        try {
          const health = (await this.call('GET', '/v1/health')) as BuiltinHealth;
          this.current = child.pid;
          return { host: health.listen.host, port: health.listen.port };
        } catch {
          // not answering yet
        }
      }
      if (Date.now() >= deadline) {
        if (child.pid) await killTree(child.pid);
        throw new RouterError(`the router of service '${this.service}' did not start within ${START_TIMEOUT_MS / 1000}s (its log: ${logFile})`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }


  private connect(): Client {
    this.client ??= new Client('http://router', { socketPath: join(this.folder, CONTROL_SOCKET), headersTimeout: CALL_TIMEOUT_MS, bodyTimeout: CALL_TIMEOUT_MS, connectTimeout: CALL_TIMEOUT_MS });
    return this.client;
  }

  /**
   * One control call; any failure is a RouterError naming the router. The caller's own mistake
   * (an address in use, bad TLS files: the router answers `inUse` or `badInput`) is said as the
   * router said it, with that flag.
   */
  private async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const client = this.connect();
    try {
      const res = await client.request({ method: method as 'GET', path, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? null : JSON.stringify(body) });
      const answer = (await res.body.json()) as Record<string, unknown>;
      if (res.statusCode >= 400 && (answer.inUse === true || answer.badInput === true)) throw new RouterError(String(answer.error), { inUse: answer.inUse === true, badInput: answer.badInput === true });
      if (res.statusCode >= 400) throw new Error(String(answer.error ?? `status ${res.statusCode}`));
      return answer;
    } catch (error) {
      if (error instanceof RouterError) throw error;
      throw new RouterError(`the router of service '${this.service}'${this.current ? ` (pid ${this.current})` : ''} failed ${method} ${path}: ${reasonOf(error)}`, { cause: error });
    }
  }
}

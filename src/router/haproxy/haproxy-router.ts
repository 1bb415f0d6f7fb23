import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { targetWeights } from '../../core/weights.js';
import { reasonOf, RouterError } from '../../errors.js';
import { alive, commandLine, endProcess, killTree, readPidFile } from '../../util/pids.js';
import { tailLines } from '../../util/tail.js';
import type { ListenSpec } from '../engine/engine.js';
import { checkSocketPath, drainBy, type RouterControl, type RouterSnapshot, type RouterStats, type RouterTarget, type TargetState, type TargetStats } from '../router-control.js';
import { checkServedAs } from '../served-as.js';
import { readTlsPair } from '../tls.js';
import { AccessLog } from './access-log.js';
import { addCounts, carriedFor, countsOf, NOTHING_CARRIED, readCarried, targetCounts, writeCarried } from './counts.js';
import { BACKEND, FRONTEND, maxconnFor, renderConfig, renderErrorFile, serverArgs, type AccessLogSampling, type HaproxyFiles, type HaproxyLimits } from './config.js';
import { infoPid, isRuntimeError, parseServersState, parseStatCsv, pidIn, runtimeCommand, type ServerState } from './runtime-api.js';

/** How long HAProxy may take to serve after it is started. */
const START_TIMEOUT_MS = 10_000;
/** How often a started router reads the access log HAProxy appends to. */
const LOG_READ_MS = 1_000;
/** Admin state bits of `show servers state`: forced maintenance, and forced drain. */
const ADMIN_MAINT = 0x01;
const ADMIN_DRAIN = 0x08;
/** The bytes of a server name HAProxy accepts; an instance id must fit them. */
const NAME_CHARS = /^[A-Za-z0-9_.:-]+$/;

/** What the router was started as (`router.json`), to know a running one is the one asked for. */
interface HaproxyMeta {
  service: string;
  listen: { host: string; port: number; protocol: 'http' | 'tcp'; tls: boolean };
}

/** The HAProxy version on this machine (`2.6.12`), or undefined when none is installed. */
export function haproxyVersion(): string | undefined {
  cachedVersion ??= (() => {
    const run = spawnSync('haproxy', ['-v'], { encoding: 'utf8', timeout: 5_000 });
    return /HAProxy version (\d+\.\d+\.\d+)/.exec(run.stdout ?? '')?.[1] ?? null;
  })();
  return cachedVersion ?? undefined;
}
let cachedVersion: string | null | undefined;

/**
 * A service's router as an HAProxy process of its own (master-worker), in `folder`. Targets
 * come and go through the runtime API on a unix socket (mode 0600), never by a reload: a
 * target is a server named by its id (its release kept beside, in `releases.json`), added in
 * maintenance, then enabled; unrouted by `state drain`; forgotten by `state maint`, its
 * sessions shut, then `del server`. Weights by release become each server's weight. Latency
 * and failures come from the access log its worker appends to (`access.log`, sampled under
 * load); the rest of the counts from `show stat`, plus what the workers a reload replaced
 * had counted (`carried.json`). Left running when the control plane stops or dies; adopted
 * by the next one through its pid file.
 */
export class HaproxyRouter implements RouterControl {
  readonly kind: string;
  private current: number | undefined;
  private readonly files: HaproxyFiles;
  private readonly metaFile: string;
  private readonly weightsFile: string;
  /** Each target's release (HAProxy keeps no such thing): `{ "<id>": 7 }`. */
  private readonly releasesFile: string;
  /** The counts of workers a reload replaced (a new worker counts from zero): `stats()` adds them (see Carried). */
  private readonly carriedFile: string;
  private readonly errorLog: string;
  private readonly log: AccessLog;
  private address: { host: string; port: number } | undefined;
  private logTimer: NodeJS.Timeout | undefined;
  /** The backend's servers as last read or set (see `servers`); undefined: read them again. */
  private known: ServerState[] | undefined;
  /** Changes under way, and how many have begun: a read overlapping one is not kept. */
  private changing = 0;
  private generation = 0;
  /** The change running now, and those waiting behind it. */
  private queue: Promise<unknown> = Promise.resolve();

  /** `options.accessLog`: what the access log keeps (default ACCESS_LOG_SAMPLING; tests sample at any rate). */
  constructor(
    readonly service: string,
    private listen: ListenSpec,
    private readonly folder: string,
    private readonly options: { accessLog?: AccessLogSampling } = {},
  ) {
    this.kind = `haproxy ${haproxyVersion() ?? '(not installed)'}`;
    this.files = {
      config: join(folder, 'haproxy.cfg'),
      socket: join(folder, 'admin.sock'),
      pid: join(folder, 'haproxy.pid'),
      tlsPem: join(folder, 'tls.pem'),
      errorFiles: { 502: join(folder, '502.http'), 503: join(folder, '503.http'), 504: join(folder, '504.http') },
    };
    this.metaFile = join(folder, 'router.json');
    this.weightsFile = join(folder, 'weights.json');
    this.releasesFile = join(folder, 'releases.json');
    this.carriedFile = join(folder, 'carried.json');
    this.errorLog = join(folder, 'haproxy.log');
    this.log = new AccessLog(join(folder, 'access.log'));
  }

  /** The HAProxy master's pid, once started or adopted. */
  get pid(): number | undefined {
    return this.current;
  }

  /** Adopts the HAProxy that serves this service, or starts one. */
  async start(): Promise<{ host: string; port: number }> {
    if (!haproxyVersion()) throw new RouterError(`the router of service '${this.service}' needs HAProxy, and none is installed (apt-get install haproxy), or run the server with --data-plane builtin`);
    checkSocketPath(this.service, this.files.socket);
    mkdirSync(this.folder, { recursive: true, mode: 0o700 });
    this.known = undefined;
    this.address = (await this.adopt()) ?? (await this.spawn());
    // The access log is read every second, off the control loop's path, so it never grows far past what was read.
    this.logTimer ??= setInterval(() => {
      try {
        this.log.read();
      } catch {
        // unreadable for now (removed, a full disk): the next read, or stats(), tries again
      }
    }, LOG_READ_MS).unref();
    // Port 0 meant "any" once: a router started again later serves where this one does.
    this.listen = { ...this.listen, port: this.address.port };
    return this.address;
  }

  async route(target: RouterTarget): Promise<void> {
    return this.change(() => this.routeNow(target));
  }

  private async routeNow(target: RouterTarget): Promise<void> {
    if (!NAME_CHARS.test(target.id)) throw new RouterError(`instance id '${target.id}': expected letters, digits and _ . : - only`, { badInput: true });
    if (isIP(target.host) === 0) throw new RouterError(`instance ${target.id}: expected an IP address, got '${target.host}'`, { badInput: true });
    const name = target.id;
    const servers = await this.servers();
    const existing = servers.find((s) => s.name === name);
    // The release first: a server never serves under another's weight.
    this.setRelease(name, target.release);
    const server = `${BACKEND}/${name}`;
    const moved = existing !== undefined && (existing.addr !== target.host || existing.port !== target.port);
    if (!existing) await this.api(`add server ${server} ${serverArgs(target.host, target.port, 1)}`);
    const now: ServerState = { name, addr: target.host, port: target.port, adminState: 0, weight: existing?.weight ?? 1 };
    const weighed = this.weigh([...servers.filter((s) => s.name !== name), now]);
    // One line, one connection: enabled (a server left in maintenance, its delete having waited
    // on idle connections, comes back as new), then every weight that moved.
    const enable = existing && !(existing.adminState & ADMIN_MAINT) ? `set server ${server} state ready` : `enable server ${server}`;
    await this.api([...(moved ? [`set server ${server} addr ${target.host} port ${target.port}`] : []), enable, `enable health ${server}`, ...weighed.changes].join('; '));
    this.known = weighed.servers;
  }

  async unroute(id: string): Promise<void> {
    return this.change(() => this.unrouteNow(id));
  }

  private async unrouteNow(id: string): Promise<void> {
    const servers = await this.servers();
    const server = servers.find((s) => s.name === id && !(s.adminState & ADMIN_MAINT));
    if (!server) return;
    const weighed = this.weigh(servers.map((s) => (s === server ? { ...s, adminState: s.adminState | ADMIN_DRAIN } : s)));
    await this.api([`set server ${BACKEND}/${server.name} state drain`, ...weighed.changes].join('; '));
    this.known = weighed.servers;
  }

  drain(id: string, timeoutMs: number): Promise<number> {
    return drainBy(this, id, timeoutMs);
  }

  async forget(id: string): Promise<void> {
    return this.change(async () => {
      if ((await this.servers()).some((s) => s.name === id)) await this.remove(id);
      this.setRelease(id, undefined, true);
      await this.reweigh();
    });
  }

  async setWeights(weights: Record<string, number> | undefined): Promise<void> {
    return this.change(async () => {
      writeFileSync(this.weightsFile, `${JSON.stringify(weights ?? null)}\n`, { mode: 0o600 });
      await this.reweigh();
    });
  }

  async snapshot(): Promise<RouterSnapshot> {
    const [servers, stat] = await Promise.all([this.servers(true), this.stat()]);
    const releases = this.releases();
    // Servers left in maintenance by a delete that waited on idle connections: deleted now if they can be.
    for (const s of servers) if (s.adminState & ADMIN_MAINT && Number(stat.get(s.name)?.scur ?? 0) === 0) await this.delete(s.name);
    const targets: TargetState[] = servers
      .filter((s) => !(s.adminState & ADMIN_MAINT))
      .map((s) => ({ id: s.name, host: s.addr, port: s.port, release: releases[s.name], routed: !(s.adminState & ADMIN_DRAIN), inflight: Number(stat.get(s.name)?.scur ?? 0) }));
    return { targets, weights: this.weights() };
  }

  async stats(): Promise<RouterStats> {
    const [servers, { worker, stat }] = await Promise.all([this.servers(true), this.workerStat()]);
    this.log.read();
    const live = servers.filter((s) => !(s.adminState & ADMIN_MAINT));
    // This worker's counts, and those of the workers reloads replaced before it (which the worker that answered tells).
    const ids = live.map((s) => s.name);
    const counts = addCounts(carriedFor(readCarried(this.carriedFile), worker, ids), countsOf(stat, this.listen.protocol === 'http'), ids);
    const releases = this.releases();
    const targets: TargetStats[] = live.map((s) => ({
      id: s.name,
      release: releases[s.name],
      routed: !(s.adminState & ADMIN_DRAIN),
      inflight: Number(stat.get(s.name)?.scur || 0),
      ...targetCounts(counts, s.name),
      latency: this.log.latencyOf(s.name),
    }));
    return {
      requests: counts.requests,
      // Ended by the server's side or HAProxy's (the access log's termination states): read from the log, so a moment behind.
      failed: this.log.failed,
      retried: counts.retried,
      targets,
    };
  }

  /**
   * Serves `listen` from now on by a hitless reload: the config is written with the servers
   * routed now (so the new worker routes where the old one did from its first request),
   * checked by `haproxy -c`, and the master is told to reload (SIGUSR2). The new worker takes
   * the listening sockets over from the old one through the runtime socket (`expose-fd
   * listeners`), so an address that stays never refuses a connection; the old worker finishes
   * what it has in flight (at most `hard-stop-after`, 30 s) and exits. The master, and so the
   * router's pid, stay. A new address is checked free first; bad TLS files, a failed check or
   * a reload that does not take leave the router as it was, serving.
   */
  async relisten(listen: ListenSpec): Promise<{ host: string; port: number }> {
    return this.change(async () => {
      if (listen.protocol !== this.listen.protocol) throw new RouterError(`the router of service '${this.service}' serves ${this.listen.protocol}, and cannot be changed to ${listen.protocol} in place`, { badInput: true });
      const pair = listen.tls ? readTlsPair(this.service, listen.tls) : undefined;
      const same = listen.host === this.listen.host && listen.port === this.listen.port;
      const pem = pair ? `${pair.cert.trim()}\n${pair.key.trim()}\n` : undefined;
      if (same && this.address && Boolean(listen.tls) === Boolean(this.listen.tls) && (pem === undefined || readFileOr(this.files.tlsPem!) === pem)) {
        // Nothing HAProxy serves would change (the same address, the same pair): no reload.
        this.listen = { ...listen, port: this.listen.port };
        return this.address;
      }
      const port = same ? this.listen.port : await checkPort(this.service, listen.host, listen.port);
      const next: ListenSpec = { ...listen, port };
      const master = this.current;
      if (master === undefined) throw new RouterError(`the router of service '${this.service}' is not running: start it first`);
      const servers = (await this.servers(true)).filter((s) => !(s.adminState & ADMIN_MAINT));
      const draining = servers.filter((s) => s.adminState & ADMIN_DRAIN).map((s) => s.name);
      const limits = this.limits();
      const config = (files: HaproxyFiles) => renderConfig(this.service, next, files, limits, servers.map((s) => ({ name: s.name, addr: s.addr, port: s.port, weight: s.weight })));
      // Checked before anything is replaced: the pair under a name of its own, the config beside.
      const staged = { pem: join(this.folder, 'tls.next.pem'), config: join(this.folder, 'haproxy.next.cfg') };
      if (pem) writeFileSync(staged.pem, pem, { mode: 0o600 });
      writeFileSync(staged.config, config({ ...this.files, tlsPem: staged.pem }), { mode: 0o600 });
      const check = spawnSync('haproxy', ['-c', '-q', '-f', staged.config], { encoding: 'utf8', timeout: 10_000 });
      rmSync(staged.config, { force: true });
      if (check.status !== 0) {
        rmSync(staged.pem, { force: true });
        const said = `${check.stdout ?? ''}${check.stderr ?? ''}`.split('\n').filter((l) => /ALERT|error/i.test(l)).at(-1) ?? `exit code ${check.status}`;
        throw new RouterError(`the router of service '${this.service}' refused its new config: ${said.trim()}`, { badInput: true });
      }
      const before = { config: readFileSync(this.files.config, 'utf8'), meta: readFileSync(this.metaFile, 'utf8'), pem: readFileOr(this.files.tlsPem!) };
      // The new worker counts from zero: what the old one counted up to now is carried over,
      // pending until another worker answers (so a reload that fails, or takes late, or a
      // control plane that dies meanwhile, neither loses nor doubles it).
      const { worker, stat } = await this.workerStat();
      const ids = servers.map((s) => s.name);
      const base = carriedFor(readCarried(this.carriedFile), worker, ids);
      const counted = countsOf(stat, this.listen.protocol === 'http');
      writeCarried(this.carriedFile, { base, pending: { worker, counted } });
      if (pair) renameSync(staged.pem, this.files.tlsPem!);
      writeFileSync(this.files.config, config(this.files), { mode: 0o600 });
      const meta: HaproxyMeta = { service: this.service, listen: { host: next.host, port, protocol: next.protocol, tls: next.tls !== undefined } };
      writeFileSync(this.metaFile, `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o600 });
      this.known = undefined;
      process.kill(master, 'SIGUSR2');
      await this.waitForWorker(worker, before, pair !== undefined);
      // Another worker answers: the pending counts are the base from now on (no later worker, given the old one's pid again, can drop them).
      writeCarried(this.carriedFile, { base: addCounts(base, counted, ids) });
      // A config has no drain state: the servers being drained are drained again in the new worker.
      if (draining.length > 0) await this.api(draining.map((name) => `set server ${BACKEND}/${name} state drain`).join('; '));
      this.listen = next;
      this.address = { host: next.host, port };
      return this.address;
    });
  }

  /**
   * Waits until a worker other than `worker` answers the runtime socket (a reload took). When
   * none does in time, what the router was started from (`before`) is put back and the old
   * worker serves on.
   */
  private async waitForWorker(worker: number, before: { config: string; meta: string; pem: string | undefined }, pair: boolean): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    while ((await this.workerPid().catch(() => worker)) === worker) {
      if (Date.now() >= deadline) {
        // The old worker serves on as it did; what it was started from is put back.
        writeFileSync(this.files.config, before.config, { mode: 0o600 });
        writeFileSync(this.metaFile, before.meta, { mode: 0o600 });
        if (pair && before.pem) writeFileSync(this.files.tlsPem!, before.pem, { mode: 0o600 });
        const alerts = tailLines(this.errorLog, 20).filter((l) => /ALERT/i.test(l));
        throw new RouterError(`the router of service '${this.service}' did not reload within ${START_TIMEOUT_MS / 1000}s${alerts.length ? `: ${alerts.at(-1)}` : ''} (its log: ${this.errorLog})`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Threads, connections, and who the workers become when imago runs as root (an empty folder of the router's made for their chroot). */
  private limits(): HaproxyLimits {
    const user = process.getuid?.() === 0 ? unprivilegedUser() : undefined;
    let drop: HaproxyLimits['drop'];
    if (user) {
      const chroot = join(this.folder, 'empty');
      mkdirSync(chroot, { recursive: true, mode: 0o755 });
      drop = { ...user, chroot };
    }
    return { threads: Math.min(4, availableParallelism()), maxconn: maxconnFor(openFilesLimit()), drop, accessLog: this.options.accessLog };
  }

  /** The pid of the worker that answers the runtime socket now (a reload replaces it). */
  private async workerPid(): Promise<number> {
    try {
      return await infoPid(this.files.socket, 1_000);
    } catch (error) {
      throw new RouterError(`the router of service '${this.service}' did not say its worker's pid: ${reasonOf(error)}`, { cause: error });
    }
  }

  /** Lets go: HAProxy serves on (there is no connection to close). */
  async close(): Promise<void> {
    clearInterval(this.logTimer);
    this.logTimer = undefined;
    this.address = undefined;
  }

  /** Stops HAProxy (SIGTERM to its master, then SIGKILL). */
  async stop(): Promise<void> {
    await this.close();
    await this.stopRunning();
  }

  /** Stops the HAProxy of this folder when one runs; true when there was one. */
  async stopRunning(): Promise<boolean> {
    // The pid file, checked again: the process once adopted may be gone, and its pid reused.
    const pid = this.runningPid();
    if (pid === undefined) return false;
    // SIGTERM: the master stops its workers at once (connections are cut: the service is going away).
    await endProcess(pid, () => void process.kill(pid, 'SIGTERM'));
    this.current = undefined;
    this.known = undefined;
    return true;
  }

  /** The weights by release last set (kept in the folder, so a new control plane reads them). */
  private weights(): Record<string, number> | undefined {
    try {
      return (JSON.parse(readFileSync(this.weightsFile, 'utf8')) as Record<string, number> | null) ?? undefined;
    } catch {
      return undefined;
    }
  }

  /** Each target's release, as last routed. */
  private releases(): Record<string, number | undefined> {
    try {
      return JSON.parse(readFileSync(this.releasesFile, 'utf8')) as Record<string, number | undefined>;
    } catch {
      return {};
    }
  }

  /** Records (or with `remove`, forgets) a target's release. */
  private setRelease(id: string, release: number | undefined, remove = false): void {
    const releases = this.releases();
    if (remove) delete releases[id];
    else if (release !== undefined || !(id in releases)) releases[id] = release;
    writeFileSync(`${this.releasesFile}.tmp`, `${JSON.stringify(releases)}\n`, { mode: 0o600 });
    renameSync(`${this.releasesFile}.tmp`, this.releasesFile);
  }

  /** Sets each server's weight from the release weights and which servers are routed. */
  private async reweigh(): Promise<void> {
    const weighed = this.weigh(await this.servers());
    if (weighed.changes.length > 0) await this.api(weighed.changes.join('; '));
    this.known = weighed.servers;
  }

  /** The `set server … weight` commands that give `servers` their weights by release and routing, and the servers as they are once those are done. */
  private weigh(servers: ServerState[]): { changes: string[]; servers: ServerState[] } {
    const live = servers.filter((s) => !(s.adminState & ADMIN_MAINT));
    const releases = this.releases();
    const weights = targetWeights(
      live.map((s) => ({ id: s.name, release: releases[s.name], routed: !(s.adminState & ADMIN_DRAIN) })),
      this.weights(),
    );
    const changes = live.filter((s) => weights.get(s.name) !== s.weight).map((s) => `set server ${BACKEND}/${s.name} weight ${weights.get(s.name)}`);
    return { changes, servers: servers.map((s) => (weights.has(s.name) ? { ...s, weight: weights.get(s.name)! } : s)) };
  }

  /** Takes a server out: maintenance, its sessions shut, then deleted (or left for a later snapshot to delete). */
  private async remove(name: string): Promise<void> {
    await this.api(`set server ${BACKEND}/${name} state maint; shutdown sessions server ${BACKEND}/${name}`);
    this.known = this.known?.map((s) => (s.name === name ? { ...s, adminState: s.adminState | ADMIN_MAINT } : s));
    this.log.forget(name);
    // Refused while idle pooled connections remain (they close within pool-purge-delay): the
    // server stays in maintenance, never routed to, and a later snapshot deletes it. Nothing
    // here waits for that: a forget is on the control loop's path.
    await this.delete(name);
  }

  /** `del server`, which may be refused (idle connections remain): the server is then left in maintenance. */
  private async delete(name: string): Promise<void> {
    if (/Server deleted/.test(await this.command(`del server ${BACKEND}/${name}`))) this.known = this.known?.filter((s) => s.name !== name);
  }

  /**
   * The backend's servers: as HAProxy last said (`fresh`: asked now), kept true by this
   * router's own changes in between. Nothing else changes a server's admin state, address or
   * weight; any failed command forgets what was known.
   */
  private async servers(fresh = false): Promise<ServerState[]> {
    if (!fresh && this.known) return this.known;
    const generation = this.generation;
    const read = parseServersState(await this.api(`show servers state ${BACKEND}`));
    // A change made while this read was on its way (stats() runs beside the loop) wins: the read is not kept.
    if (this.changing === 0 && generation === this.generation) this.known = read;
    return read;
  }

  /**
   * Runs a change of the servers, one at a time (a reload must never miss a route made while
   * it runs): reads that overlap one are not kept as what is known.
   */
  private change<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(async () => {
      this.changing++;
      this.generation++;
      try {
        return await work();
      } finally {
        this.changing--;
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** `show stat` of the router's frontend, backend and servers, by server name (`FRONTEND`, `BACKEND` for those). */
  private async stat(): Promise<Map<string, Record<string, string>>> {
    return statRows(await this.api('show stat'));
  }

  /** `stat()`, and the pid of the worker that answered it (one connection, so one worker: a reload may be under way). */
  private async workerStat(): Promise<{ worker: number; stat: Map<string, Record<string, string>> }> {
    const answer = await this.api('show info; show stat');
    const worker = pidIn(answer);
    const csv = answer.indexOf('# pxname');
    if (worker === undefined || csv < 0) throw new RouterError(`the router of service '${this.service}' answered 'show info; show stat' without its worker's pid or its stats: ${answer.trim().slice(0, 200)}`);
    return { worker, stat: statRows(answer.slice(csv)) };
  }

  /** One runtime API command that must succeed. */
  private async api(command: string): Promise<string> {
    const answer = await this.command(command);
    // `show` answers are data (a check's "Connection refused" among them); the others answer nothing, or what went wrong.
    if (!command.startsWith('show ') && isRuntimeError(answer)) {
      this.known = undefined;
      throw new RouterError(`the router of service '${this.service}' refused '${command}': ${answer.trim()}`);
    }
    return answer;
  }

  /** One runtime API command; any failure to talk is a RouterError naming the router. */
  private async command(command: string): Promise<string> {
    try {
      return await runtimeCommand(this.files.socket, command);
    } catch (error) {
      this.known = undefined;
      throw new RouterError(`the router of service '${this.service}'${this.current ? ` (haproxy pid ${this.current})` : ''} failed '${command.split(' ').slice(0, 2).join(' ')}': ${reasonOf(error)}`, { cause: error });
    }
  }

  /** The pid in the pid file, when that process is this folder's HAProxy (not a reused pid). */
  runningPid(): number | undefined {
    const pid = readPidFile(this.files.pid);
    if (pid === undefined || !alive(pid)) return undefined;
    const args = commandLine(pid);
    return /haproxy$/.test(args[0] ?? '') && args.includes(this.files.config) ? pid : undefined;
  }

  /** The running HAProxy, when it serves this service where it should. */
  private async adopt(): Promise<{ host: string; port: number } | undefined> {
    const pid = this.runningPid();
    if (pid === undefined) return undefined;
    let meta: HaproxyMeta;
    try {
      meta = JSON.parse(readFileSync(this.metaFile, 'utf8')) as HaproxyMeta;
      await infoPid(this.files.socket);
    } catch {
      // It runs but does not answer (hung, or its socket was removed): it goes, a new one starts.
      await killTree(pid);
      return undefined;
    }
    checkServedAs(meta, this.service, this.listen, `haproxy pid ${pid}`);
    this.current = pid;
    return { host: meta.listen.host, port: meta.listen.port };
  }

  private async spawn(): Promise<{ host: string; port: number }> {
    // Bad TLS files and a port in use are the caller's mistakes, said before any process starts.
    const pair = this.listen.tls ? readTlsPair(this.service, this.listen.tls) : undefined;
    const port = await checkPort(this.service, this.listen.host, this.listen.port);
    const listen = { ...this.listen, port };
    if (pair && this.files.tlsPem) writeFileSync(this.files.tlsPem, `${pair.cert.trim()}\n${pair.key.trim()}\n`, { mode: 0o600 });
    for (const status of [502, 503, 504] as const) writeFileSync(this.files.errorFiles[status], renderErrorFile(status, this.service), { mode: 0o600 });
    writeFileSync(this.files.config, renderConfig(this.service, listen, this.files, this.limits()), { mode: 0o600 });
    const meta: HaproxyMeta = { service: this.service, listen: { host: listen.host, port, protocol: listen.protocol, tls: listen.tls !== undefined } };
    writeFileSync(this.metaFile, `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o600 });
    writeFileSync(this.weightsFile, 'null\n', { mode: 0o600 });
    writeFileSync(this.releasesFile, '{}\n', { mode: 0o600 });
    // A new HAProxy counts from zero, and so does the router.
    writeCarried(this.carriedFile, NOTHING_CARRIED);
    const access = openSync(join(this.folder, 'access.log'), 'a', 0o600);
    const errors = openSync(this.errorLog, 'a', 0o600);
    const child = spawn('haproxy', ['-W', '-f', this.files.config], { detached: true, stdio: ['ignore', access, errors] });
    closeSync(access);
    closeSync(errors);
    child.unref();
    let exited: number | null | undefined;
    child.once('exit', (code, signal) => (exited = code ?? (signal ? 128 : 1)));
    child.once('error', () => (exited = 127));
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (exited !== undefined) {
        const alerts = tailLines(this.errorLog, 20).filter((l) => /ALERT|cannot|error/i.test(l));
        const inUse = alerts.some((l) => /Address already in use|cannot bind/i.test(l));
        if (inUse) throw new RouterError(`failed to listen on ${listen.host}:${port} for service '${this.service}': the port is in use`, { inUse: true });
        throw new RouterError(`the router of service '${this.service}' (haproxy) failed to start: ${alerts.at(-1) ?? `exit code ${exited}`} (its log: ${this.errorLog})`);
      }
      const pid = readPidFile(this.files.pid);
      if (pid === child.pid && (await infoPid(this.files.socket, 1_000).then(() => true, () => false))) {
        this.current = pid;
        return { host: listen.host, port };
      }
      if (Date.now() >= deadline) {
        if (child.pid) await killTree(child.pid);
        throw new RouterError(`the router of service '${this.service}' (haproxy) did not start within ${START_TIMEOUT_MS / 1000}s (its log: ${this.errorLog})`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

}

/** The port to bind: `port`, checked free, or a free one for 0. A port in use is a RouterError saying so. */
function checkPort(service: string, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => {
      const inUse = error.code === 'EADDRINUSE';
      reject(new RouterError(`failed to listen on ${host}:${port} for service '${service}': ${inUse ? 'the port is in use' : error.message}`, { cause: error, inUse }));
    });
    probe.listen({ host, port, exclusive: true }, () => {
      const bound = (probe.address() as { port: number }).port;
      probe.close(() => resolve(bound));
    });
  });
}

/**
 * Who HAProxy's workers become when started as root: the `haproxy` user and group the Debian
 * package makes, else `nobody` and `nogroup`; undefined when neither is there.
 */
function unprivilegedUser(): { user: string; group: string } | undefined {
  const names = (file: string) => new Set(readFileOr(file).split('\n').map((line) => line.split(':')[0]));
  const users = names('/etc/passwd');
  const groups = names('/etc/group');
  if (users.has('haproxy') && groups.has('haproxy')) return { user: 'haproxy', group: 'haproxy' };
  if (users.has('nobody') && groups.has('nogroup')) return { user: 'nobody', group: 'nogroup' };
  return undefined;
}

/** A file's text, or '' when it cannot be read. */
function readFileOr(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** This process's hard limit of open files (what HAProxy, started by it, may raise its own to). */
function openFilesLimit(): number {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const hard = Number(line?.trim().split(/\s+/)[4]);
    return Number.isFinite(hard) ? hard : 4096;
  } catch {
    return 4096;
  }
}

/** The rows of a `show stat` answer imago reads: its frontend's, its backend's and its servers', by server name. */
function statRows(answer: string): Map<string, Record<string, string>> {
  return new Map(parseStatCsv(answer).filter((r) => r.pxname === BACKEND || (r.pxname === FRONTEND && r.svname === 'FRONTEND')).map((r) => [r.svname!, r]));
}

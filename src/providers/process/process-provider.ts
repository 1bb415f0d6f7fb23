import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { appendFile, chmod, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { mergeEnv } from '../../bake/image-config.js';
import { DEFAULTS } from '../../config/normalise.js';
import { findBwrap } from '../../bake/sandbox.js';
import { ProviderError } from '../../errors.js';
import { isDigest, type Digest } from '../../oci/digest.js';
import { existingDirInRoot, resolveInRoot } from '../../oci/safe-path.js';
import type { ImageConfig } from '../../oci/types.js';
import type { ImageStore } from '../../store/image-store.js';
import { OutputFiles, outputTail } from '../output-files.js';
import type { InstanceSecret, InstanceSpec, InstanceUsage, OutputRead, OutputStream, Provider, ProviderEvent, ProviderInstance } from '../provider.js';
import { instanceCgroup, JOIN_CGROUPS_SCRIPT, removeCgroup } from './cgroup.js';
import { DEFAULT_DRIFT_SCHEDULE, DriftScanner, type DriftSchedule } from './drift-scanner.js';
import { isRunning, processGroupOf, processStartTime, signal } from './proc.js';
import { RootfsCache } from './rootfs-cache.js';
import { instanceUsage } from './usage.js';
import { resolveUser } from './users.js';

/** What the provider remembers of an instance, in `<home>/instances/<id>.json`. */
interface InstanceRecord {
  id: string;
  labels: Record<string, string>;
  digest: Digest;
  /** bubblewrap's pid (the process group leader) and its start time. */
  pid: number;
  startTime: string;
  /** The app's pid on the host (PID 1 inside its namespace). */
  appPid: number;
  port: number;
  startedAt: number;
  statusFile: string;
  /** The instance's cgroup folders (none when limits could not be enforced). */
  cgroups?: string[];
  /** The environment the app was started with (drift compares /proc against it; absent in older records). */
  env?: Array<[string, string]>;
  /** The root filesystem it runs from (absent in older records: the digest's). */
  root?: string;
}

/** Options of the process provider. */
export interface ProcessProviderOptions {
  /** Where instances, logs, volumes and root filesystems live; default: the store's home. */
  home?: string;
  /** How often drift evidence is gathered (see DriftScanner). */
  drift?: Partial<DriftSchedule>;
}

/** How long a new sandbox may take to report that its app started. */
const START_TIMEOUT_MS = 10_000;
const POLL_MS = 20;
/** Where file secrets appear inside an instance: a private tmpfs. */
const SECRETS_DIR = '/run/secrets';
/** How often a watcher checks that the instances it knows still run (one /proc read each). */
const WATCH_MS = 100;
/** How often a watcher reads the instances folder again (instances another provider object made). */
const WATCH_LIST_MS = 1_000;

/**
 * The embedded default provider: each instance is a process started from the image's root
 * filesystem and sealed with bubblewrap — read-only root, private /proc, /dev and /tmp, its
 * own pid/ipc/uts namespaces and an unprivileged user namespace (no host capabilities), only
 * declared volumes writable. It shares the host's network and listens on its own loopback
 * port. Instances are detached: they outlive the process that started them, and a new
 * provider object (a restarted server) finds them again from their records.
 */
export class ProcessProvider implements Provider {
  readonly name = 'process';
  private readonly rootfs: RootfsCache;
  private readonly instancesDir: string;
  private readonly logsDir: string;
  private readonly output: OutputFiles;
  private readonly volumesDir: string;
  private readonly scanner: DriftScanner;
  private readonly listeners = new Set<(event: ProviderEvent) => void>();
  private watching: { timer: NodeJS.Timeout; running: Map<string, boolean>; listedAt: number } | undefined;

  constructor(
    private readonly store: ImageStore,
    options: ProcessProviderOptions | string = {},
  ) {
    const { home = store.home, drift = {} } = typeof options === 'string' ? { home: options } : options;
    this.rootfs = new RootfsCache(store, join(home, 'rootfs'));
    this.instancesDir = join(home, 'instances');
    this.logsDir = join(home, 'logs');
    this.output = new OutputFiles(this.logsDir);
    this.volumesDir = join(home, 'volumes');
    this.scanner = new DriftScanner(
      store,
      { instances: this.instancesDir, rootfs: join(home, 'rootfs') },
      (id) => this.emit({ id, kind: 'changed' }),
      { ...DEFAULT_DRIFT_SCHEDULE, ...drift },
      (root, digest) => this.quarantine(root, digest),
    );
  }

  /** Unpacks the image's root filesystem (once per digest). */
  async loadImage(digest: Digest): Promise<void> {
    await this.rootfs.ensure(digest);
  }

  /** Starts a sealed instance; resolves once its app process runs. */
  async create(spec: InstanceSpec): Promise<ProviderInstance> {
    if (!/^[a-z0-9][a-z0-9-]{0,80}$/.test(spec.id)) throw new ProviderError(`invalid instance id '${spec.id}': expected lowercase letters, digits and "-"`);
    const bwrap = await findBwrap();
    const root = await this.rootfs.ensure(spec.digest);
    const config = await this.store.config(spec.digest);
    const runtime = config.config ?? {};
    const argv = [...(runtime.Entrypoint ?? []), ...(runtime.Cmd ?? [])];
    if (argv.length === 0) throw new ProviderError(`failed to start instance '${spec.id}': image ${spec.digest} has no entrypoint or cmd`);
    const user = await resolveUser(root, runtime.User);
    await mkdir(this.instancesDir, { recursive: true });
    await mkdir(this.logsDir, { recursive: true });

    const args = ['--ro-bind', root, '/', '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp'];
    args.push('--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try', '--unshare-user', '--uid', String(user.uid), '--gid', String(user.gid));
    args.push('--as-pid-1', '--hostname', spec.id.slice(0, 63));
    for (const volume of spec.volumes) args.push('--bind', await this.volumeDir(spec, volume.name, root, volume.path), volume.path);
    args.push('--clearenv');
    const env = this.environment(config, spec);
    for (const [key, value] of env) args.push('--setenv', key, value);
    // Secrets never go on the command line (ps shows it): their arguments come from fd 4
    // (`--args`), and each file's bytes from an fd of its own onto a private tmpfs, mode 0400.
    const secrets = spec.secrets ?? [];
    const files = secrets.filter((s): s is InstanceSecret & { file: string } => 'file' in s);
    if (files.length > 0) {
      await this.mountPoint(root, SECRETS_DIR);
      args.push('--tmpfs', SECRETS_DIR);
    }
    const secretArgs: string[] = [];
    for (const s of secrets) {
      if ('env' in s) {
        if (s.value.includes(0)) throw new ProviderError(`failed to start instance '${spec.id}': secret "${s.name}" holds a NUL byte, which an environment variable cannot: give it as a file`);
        secretArgs.push('--setenv', s.env, s.value.toString('utf8'));
      }
    }
    files.forEach((s, i) => secretArgs.push('--perms', '0400', '--ro-bind-data', String(5 + i), s.file));
    if (secrets.length > 0) args.push('--args', '4');
    args.push('--chdir', runtime.WorkingDir ?? '/', '--json-status-fd', '3', '--', ...argv);

    const outputs = { stdout: this.output.path(spec.id, 'stdout'), stderr: this.output.path(spec.id, 'stderr') };
    const statusFile = join(this.instancesDir, `${spec.id}.status`);
    const cgroup = await instanceCgroup(spec.id, spec.resources ?? DEFAULTS.service.resources);
    if ('unavailable' in cgroup) await appendFile(outputs.stderr, `imago: memory and pids limits are not enforced: ${cgroup.unavailable}\n`, { mode: 0o640 });
    const cgroups = 'unavailable' in cgroup ? [] : cgroup.dirs;
    let pid: number | undefined;
    try {
      pid = this.spawnSandbox(bwrap, args, cgroup, outputs, statusFile, secrets.length > 0 ? [Buffer.from(secretArgs.map((a) => `${a}\0`).join('')), ...files.map((s) => s.value)] : []);
    } catch (error) {
      await removeCgroup(cgroups);
      throw error;
    }
    const startTime = pid === undefined ? undefined : processStartTime(pid);
    if (pid === undefined || startTime === undefined) {
      await removeCgroup(cgroups);
      throw await this.startFailure(spec.id, 'bubblewrap did not start');
    }
    const appPid = await this.waitForApp(spec.id, pid, startTime, statusFile).catch(async (error: unknown) => {
      await removeCgroup(cgroups);
      throw error;
    });
    const record: InstanceRecord = { id: spec.id, labels: spec.labels, digest: spec.digest, pid, startTime, appPid, port: spec.port, startedAt: Date.now(), statusFile, cgroups, env, root };
    const tmp = join(this.instancesDir, `.${spec.id}.json.tmp`);
    await writeFile(tmp, JSON.stringify(record));
    await rename(tmp, join(this.instancesDir, `${spec.id}.json`));
    this.cache.set(spec.id, record);
    this.watching?.running.set(spec.id, true); // watched from now on, not from the next listing
    return this.toInstance(record);
  }

  /**
   * Starts the sandbox, detached: inside its cgroups when it has them (a shell joins them, then
   * becomes bubblewrap: same pid). `feeds` are written to pipes on fds 4, 5 … (secrets) and closed.
   */
  private spawnSandbox(bwrap: string, args: string[], cgroup: Awaited<ReturnType<typeof instanceCgroup>>, files: Record<OutputStream, string>, statusFile: string, feeds: Buffer[] = []): number | undefined {
    const out = openSync(files.stdout, 'a', 0o640);
    let err: number | undefined;
    let status: number | undefined;
    try {
      err = openSync(files.stderr, 'a', 0o640);
      status = openSync(statusFile, 'w', 0o600);
      const stdio: Array<'ignore' | 'pipe' | number> = ['ignore', out, err, status, ...feeds.map(() => 'pipe' as const)];
      const child =
        'unavailable' in cgroup
          ? spawn(bwrap, args, { detached: true, stdio })
          : spawn('/bin/sh', ['-c', JOIN_CGROUPS_SCRIPT, 'imago-instance', bwrap, ...args], {
              detached: true,
              stdio,
              env: { ...process.env, IMAGO_CGROUP_PROCS: cgroup.procs.join(' ') },
            });
      child.on('error', () => undefined); // reported by the caller, from the status file and the log
      feeds.forEach((feed, i) => {
        const pipe = child.stdio[4 + i] as NodeJS.WritableStream | null;
        pipe?.on('error', () => undefined); // a sandbox that died before reading: its start fails on its own
        pipe?.end(feed);
      });
      child.unref();
      return child.pid;
    } finally {
      closeSync(out);
      if (err !== undefined) closeSync(err);
      if (status !== undefined) closeSync(status);
    }
  }

  /** SIGTERM to the app, SIGKILL to its whole process group after the grace period, then forget it. */
  async destroy(id: string, options: { graceMs: number }): Promise<void> {
    const record = await this.read(id);
    if (!record) return;
    if (isRunning(record.pid, record.startTime)) {
      signal(record.appPid, 'SIGTERM');
      const deadline = Date.now() + options.graceMs;
      while (isRunning(record.pid, record.startTime) && Date.now() < deadline) await sleep(POLL_MS);
      if (isRunning(record.pid, record.startTime)) {
        signal(-record.pid, 'SIGKILL');
        const killDeadline = Date.now() + 5_000;
        while (isRunning(record.pid, record.startTime) && Date.now() < killDeadline) await sleep(POLL_MS);
        if (isRunning(record.pid, record.startTime)) throw new ProviderError(`failed to stop instance '${id}': pid ${record.pid} survived SIGKILL`);
      }
    }
    // An app whose bubblewrap died first is still in the sandbox's process group: it goes too.
    if (processGroupOf(record.appPid) === record.pid) signal(-record.pid, 'SIGKILL');
    await removeCgroup(record.cgroups ?? []);
    await rm(join(this.instancesDir, `${id}.json`), { force: true });
    await rm(record.statusFile, { force: true });
    await this.scanner.forget(id);
    this.watching?.running.delete(id);
    this.cache.delete(id);
    // A drifted root moved aside goes with the last instance on it.
    if (record.root && !(await this.records()).some((r) => r.root === record.root)) await this.rootfs.removeAside(record.root);
  }

  /** SIGKILL to the whole sandbox (bubblewrap and the app), as a power cut would; its record stays until destroyed. */
  async kill(id: string): Promise<void> {
    const record = await this.read(id);
    if (!record || !isRunning(record.pid, record.startTime)) return;
    signal(-record.pid, 'SIGKILL');
    signal(record.appPid, 'SIGKILL');
    const deadline = Date.now() + 5_000;
    while (isRunning(record.pid, record.startTime) && Date.now() < deadline) await sleep(POLL_MS);
    if (isRunning(record.pid, record.startTime)) throw new ProviderError(`failed to kill instance '${id}': pid ${record.pid} survived SIGKILL`);
    this.emit({ id, kind: 'exited' });
  }

  /**
   * Tells `listener` when an instance exits (checked every 100 ms: one /proc read per
   * instance) or drifts (as the drift scanner finds it).
   */
  watch(listener: (event: ProviderEvent) => void): () => void {
    this.listeners.add(listener);
    if (!this.watching) {
      const watching = { running: new Map<string, boolean>(), listedAt: 0, timer: setInterval(() => void this.poll(), WATCH_MS) };
      watching.timer.unref();
      this.watching = watching;
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0 && this.watching) {
        clearInterval(this.watching.timer);
        this.watching = undefined;
      }
    };
  }

  /** One round of the watcher: exits of known instances; new records now and then; drift scans when due. */
  private async poll(): Promise<void> {
    const watching = this.watching;
    if (!watching) return;
    if (Date.now() - watching.listedAt >= WATCH_LIST_MS) {
      watching.listedAt = Date.now();
      const records = await this.records();
      for (const record of records) {
        if (watching.running.has(record.id)) continue;
        const running = isRunning(record.pid, record.startTime);
        watching.running.set(record.id, running);
        if (!running) this.emit({ id: record.id, kind: 'exited' }); // found dead: it may have just died
      }
      this.scanner.poke(records.map((r) => this.scanned(r)));
    }
    for (const [id, wasRunning] of watching.running) {
      const record = this.cache.get(id);
      if (!record) continue;
      const running = isRunning(record.pid, record.startTime);
      if (wasRunning && !running) this.emit({ id, kind: 'exited' });
      watching.running.set(id, running);
    }
  }

  private emit(event: ProviderEvent): void {
    for (const listener of [...this.listeners]) listener(event);
  }

  private scanned(record: InstanceRecord) {
    return { id: record.id, digest: record.digest, appPid: record.appPid, running: isRunning(record.pid, record.startTime), env: record.env, root: record.root ?? this.rootfs.path(record.digest) };
  }

  /** Every record in the instances folder (none when there is no folder yet; any other read error is one). */
  private async records(): Promise<InstanceRecord[]> {
    const names = await readdir(this.instancesDir).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return [] as string[];
      throw new ProviderError(`failed to read the instances folder '${this.instancesDir}': ${error.message}`, { cause: error });
    });
    const out: InstanceRecord[] = [];
    for (const name of names.filter((n) => n.endsWith('.json') && !n.startsWith('.')).sort()) {
      const record = await this.read(name.slice(0, -'.json'.length));
      if (record) out.push(record);
    }
    return out;
  }

  /** The CPU and memory of each running instance among `ids`, from its cgroups (see instanceUsage). */
  async usage(ids: string[]): Promise<Map<string, InstanceUsage>> {
    const out = new Map<string, InstanceUsage>();
    for (const id of ids) {
      const record = await this.read(id);
      if (!record || !isRunning(record.pid, record.startTime)) continue;
      const usage = await instanceUsage(record.cgroups ?? [], record.appPid);
      if (usage) out.set(id, usage);
    }
    return out;
  }

  /** Every instance with a record here, optionally filtered by labels (and a drift scan started, when one is due). */
  async list(labels: Record<string, string> = {}): Promise<ProviderInstance[]> {
    const records = await this.records();
    this.scanner.poke(records.map((r) => this.scanned(r)));
    const out: ProviderInstance[] = [];
    for (const record of records) {
      if (Object.entries(labels).every(([key, value]) => record.labels[key] === value)) out.push(await this.toInstance(record));
    }
    return out;
  }

  /**
   * A root filesystem drifted: it is moved aside, and the records of the instances on it say
   * where it went; the next instance of the image gets a fresh unpack.
   */
  private async quarantine(root: string, digest: Digest): Promise<void> {
    const aside = await this.rootfs.quarantine(root, digest);
    if (!aside) return;
    for (const record of await this.records()) {
      if ((record.root ?? this.rootfs.path(record.digest)) !== root) continue;
      const moved: InstanceRecord = { ...record, root: aside };
      const tmp = join(this.instancesDir, `.${record.id}.json.tmp`);
      await writeFile(tmp, JSON.stringify(moved));
      await rename(tmp, join(this.instancesDir, `${record.id}.json`));
      this.cache.set(record.id, moved);
    }
  }

  /** Runs every drift check now and waits for it (tests, the bench). */
  async checkDrift(): Promise<void> {
    await this.scanner.scan((await this.records()).map((r) => this.scanned(r)), { force: true });
  }

  /** One instance, or undefined. */
  async inspect(id: string): Promise<ProviderInstance | undefined> {
    const record = await this.read(id);
    return record ? this.toInstance(record) : undefined;
  }

  /** Records read so far: they never change once written. */
  private readonly cache = new Map<string, InstanceRecord>();

  /** An instance's record, or undefined when it has none (or a torn one); an unreadable one is an error. */
  private async read(id: string): Promise<InstanceRecord | undefined> {
    let text: string;
    try {
      text = await readFile(join(this.instancesDir, `${id}.json`), 'utf8');
    } catch (error) {
      this.cache.delete(id);
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new ProviderError(`failed to read the record of instance '${id}': ${(error as Error).message}`, { cause: error });
    }
    try {
      const record = JSON.parse(text) as InstanceRecord;
      if (!isDigest(record.digest) || typeof record.pid !== 'number') return undefined;
      this.cache.set(id, record);
      return record;
    } catch {
      return undefined; // a record not written whole: none
    }
  }

  private async toInstance(record: InstanceRecord): Promise<ProviderInstance> {
    const running = isRunning(record.pid, record.startTime);
    return {
      id: record.id,
      labels: record.labels,
      digest: record.digest,
      state: running ? 'running' : 'exited',
      address: { host: '127.0.0.1', port: record.port },
      startedAt: record.startedAt,
      exitCode: running ? undefined : await exitCodeOf(record.statusFile),
      drift: await this.scanner.of(record.id),
    };
  }

  /** Reads an instance's output from its file (the app writes it straight there: nothing sits in between). */
  readOutput(id: string, stream: OutputStream, position: number, buffer: Buffer): Promise<OutputRead> {
    return this.output.read(id, stream, position, buffer);
  }

  /** Removes an instance's output files. */
  forgetOutput(id: string): Promise<void> {
    return this.output.forget(id);
  }

  /** Stops watching; instances and their logs need no process here. */
  async close(): Promise<void> {
    this.listeners.clear();
    if (this.watching) clearInterval(this.watching.timer);
    this.watching = undefined;
    await this.scanner.close();
  }

  /** The image's environment, then the instance's, then PORT and HOST (the host's loopback). */
  private environment(config: ImageConfig, spec: InstanceSpec): Array<[string, string]> {
    return mergeEnv(config.config?.Env ?? [], [...spec.env, ['PORT', String(spec.port)], ['HOST', '127.0.0.1']]);
  }

  /** A volume's host folder (kept across instances), with its mount point made in the shared root. */
  private async volumeDir(spec: InstanceSpec, name: string, root: string, path: string): Promise<string> {
    const service = spec.labels['imago.service'] ?? 'default';
    const dir = join(this.volumesDir, service, name);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await this.mountPoint(root, path);
    return dir;
  }

  /** Makes `path` a folder of the (shared, read-only to instances) root when it is not one, for a mount over it. */
  private async mountPoint(root: string, path: string): Promise<void> {
    if (await existingDirInRoot(root, path)) return;
    const mountPoint = await resolveInRoot(root, path, true);
    await mkdir(mountPoint, { recursive: true });
    await chmod(mountPoint, 0o755);
  }

  /** Waits for bubblewrap to report the app's pid; a sandbox that dies first fails with its log. */
  private async waitForApp(id: string, pid: number, startTime: string, statusFile: string): Promise<number> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      const text = await readFile(statusFile, 'utf8').catch(() => '');
      const childPid = /"child-pid":\s*(\d+)/.exec(text)?.[1];
      if (childPid) return Number(childPid);
      if (!isRunning(pid, startTime)) throw await this.startFailure(id, 'its sandbox exited at once');
      await sleep(POLL_MS);
    }
    signal(-pid, 'SIGKILL');
    throw await this.startFailure(id, `its sandbox did not start within ${START_TIMEOUT_MS / 1000}s`);
  }

  private async startFailure(id: string, what: string): Promise<ProviderError> {
    const tail = (await outputTail(this, id, 10)).join('\n  ');
    await rm(join(this.instancesDir, `${id}.status`), { force: true }).catch(() => undefined);
    return new ProviderError(`failed to start instance '${id}': ${what}${tail ? `:\n  ${tail}` : ''}`);
  }
}

/** The exit code bubblewrap recorded for the app, if it recorded one. */
async function exitCodeOf(statusFile: string): Promise<number | undefined> {
  const text = await readFile(statusFile, 'utf8').catch(() => '');
  const code = /"exit-code":\s*(\d+)/.exec(text)?.[1];
  return code === undefined ? undefined : Number(code);
}

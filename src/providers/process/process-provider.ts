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
import type { InstanceSpec, Provider, ProviderInstance } from '../provider.js';
import { instanceCgroup, JOIN_CGROUPS_SCRIPT, removeCgroup } from './cgroup.js';
import { isRunning, processGroupOf, processStartTime, signal } from './proc.js';
import { RootfsCache } from './rootfs-cache.js';
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
  logFile: string;
  statusFile: string;
  /** The instance's cgroup folders (none when limits could not be enforced). */
  cgroups?: string[];
}

/** How long a new sandbox may take to report that its app started. */
const START_TIMEOUT_MS = 10_000;
const POLL_MS = 20;

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
  private readonly volumesDir: string;

  constructor(
    private readonly store: ImageStore,
    home: string = store.home,
  ) {
    this.rootfs = new RootfsCache(store, join(home, 'rootfs'));
    this.instancesDir = join(home, 'instances');
    this.logsDir = join(home, 'logs');
    this.volumesDir = join(home, 'volumes');
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
    for (const [key, value] of this.environment(config, spec)) args.push('--setenv', key, value);
    args.push('--chdir', runtime.WorkingDir ?? '/', '--json-status-fd', '3', '--', ...argv);

    const logFile = join(this.logsDir, `${spec.id}.log`);
    const statusFile = join(this.instancesDir, `${spec.id}.status`);
    const cgroup = await instanceCgroup(spec.id, spec.resources ?? DEFAULTS.service.resources);
    if ('unavailable' in cgroup) await appendFile(logFile, `imago: memory and pids limits are not enforced: ${cgroup.unavailable}\n`, { mode: 0o640 });
    const cgroups = 'unavailable' in cgroup ? [] : cgroup.dirs;
    let pid: number | undefined;
    try {
      pid = this.spawnSandbox(bwrap, args, cgroup, logFile, statusFile);
    } catch (error) {
      await removeCgroup(cgroups);
      throw error;
    }
    const startTime = pid === undefined ? undefined : processStartTime(pid);
    if (pid === undefined || startTime === undefined) {
      await removeCgroup(cgroups);
      throw await this.startFailure(spec.id, logFile, 'bubblewrap did not start');
    }
    const appPid = await this.waitForApp(spec.id, pid, startTime, statusFile, logFile).catch(async (error: unknown) => {
      await removeCgroup(cgroups);
      throw error;
    });
    const record: InstanceRecord = { id: spec.id, labels: spec.labels, digest: spec.digest, pid, startTime, appPid, port: spec.port, startedAt: Date.now(), logFile, statusFile, cgroups };
    const tmp = join(this.instancesDir, `.${spec.id}.json.tmp`);
    await writeFile(tmp, JSON.stringify(record));
    await rename(tmp, join(this.instancesDir, `${spec.id}.json`));
    return this.toInstance(record);
  }

  /** Starts the sandbox, detached: inside its cgroups when it has them (a shell joins them, then becomes bubblewrap: same pid). */
  private spawnSandbox(bwrap: string, args: string[], cgroup: Awaited<ReturnType<typeof instanceCgroup>>, logFile: string, statusFile: string): number | undefined {
    const log = openSync(logFile, 'a', 0o640);
    let status: number | undefined;
    try {
      status = openSync(statusFile, 'w', 0o600);
      const child =
        'unavailable' in cgroup
          ? spawn(bwrap, args, { detached: true, stdio: ['ignore', log, log, status] })
          : spawn('/bin/sh', ['-c', JOIN_CGROUPS_SCRIPT, 'imago-instance', bwrap, ...args], {
              detached: true,
              stdio: ['ignore', log, log, status],
              env: { ...process.env, IMAGO_CGROUP_PROCS: cgroup.procs.join(' ') },
            });
      child.on('error', () => undefined); // reported by the caller, from the status file and the log
      child.unref();
      return child.pid;
    } finally {
      closeSync(log);
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
  }

  /** Every instance with a record here, optionally filtered by labels. */
  async list(labels: Record<string, string> = {}): Promise<ProviderInstance[]> {
    const names = await readdir(this.instancesDir).catch(() => [] as string[]);
    const out: ProviderInstance[] = [];
    for (const name of names.filter((n) => n.endsWith('.json') && !n.startsWith('.')).sort()) {
      const record = await this.read(name.slice(0, -'.json'.length));
      if (!record) continue;
      if (Object.entries(labels).every(([key, value]) => record.labels[key] === value)) out.push(await this.toInstance(record));
    }
    return out;
  }

  /** One instance, or undefined. */
  async inspect(id: string): Promise<ProviderInstance | undefined> {
    const record = await this.read(id);
    return record ? this.toInstance(record) : undefined;
  }

  private async read(id: string): Promise<InstanceRecord | undefined> {
    try {
      const record = JSON.parse(await readFile(join(this.instancesDir, `${id}.json`), 'utf8')) as InstanceRecord;
      return isDigest(record.digest) && typeof record.pid === 'number' ? record : undefined;
    } catch {
      return undefined;
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
      logFile: record.logFile,
      drift: [],
    };
  }

  /** Nothing to let go of: instances and their logs need no process here. */
  async close(): Promise<void> {}

  /** The image's environment, then the instance's, then PORT and HOST (the host's loopback). */
  private environment(config: ImageConfig, spec: InstanceSpec): Array<[string, string]> {
    return mergeEnv(config.config?.Env ?? [], [...spec.env, ['PORT', String(spec.port)], ['HOST', '127.0.0.1']]);
  }

  /** A volume's host folder (kept across instances), with its mount point made in the shared root. */
  private async volumeDir(spec: InstanceSpec, name: string, root: string, path: string): Promise<string> {
    const service = spec.labels['imago.service'] ?? 'default';
    const dir = join(this.volumesDir, service, name);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    if (!(await existingDirInRoot(root, path))) {
      const mountPoint = await resolveInRoot(root, path, true);
      await mkdir(mountPoint, { recursive: true });
      await chmod(mountPoint, 0o755);
    }
    return dir;
  }

  /** Waits for bubblewrap to report the app's pid; a sandbox that dies first fails with its log. */
  private async waitForApp(id: string, pid: number, startTime: string, statusFile: string, logFile: string): Promise<number> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      const text = await readFile(statusFile, 'utf8').catch(() => '');
      const childPid = /"child-pid":\s*(\d+)/.exec(text)?.[1];
      if (childPid) return Number(childPid);
      if (!isRunning(pid, startTime)) throw await this.startFailure(id, logFile, 'its sandbox exited at once');
      await sleep(POLL_MS);
    }
    signal(-pid, 'SIGKILL');
    throw await this.startFailure(id, logFile, `its sandbox did not start within ${START_TIMEOUT_MS / 1000}s`);
  }

  private async startFailure(id: string, logFile: string, what: string): Promise<ProviderError> {
    const tail = (await readFile(logFile, 'utf8').catch(() => '')).trim().split('\n').slice(-10).join('\n  ');
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

import { appendFile, chown, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Docker from 'dockerode';
import { DEFAULTS } from '../../config/normalise.js';
import { ProviderError } from '../../errors.js';
import { isDigest, type Digest } from '../../oci/digest.js';
import type { ImageStore } from '../../store/image-store.js';
import { Label, type InstanceSpec, type InstanceUsage, type OutputRead, type OutputStream, type Provider, type ProviderEvent, type ProviderInstance } from '../provider.js';
import { OutputFiles } from '../output-files.js';
import { RootfsCache } from '../process/rootfs-cache.js';
import { resolveUser } from '../process/users.js';
import { containerCreateOptions, DockerLabel, NETWORK, volumeName } from './container-config.js';
import { driftOf, type EngineEvent } from './drift.js';
import { engineError, statusOf } from './engine-error.js';
import { ImageLoader, imageRef } from './image-loader.js';
import { LogFollower, timestampNanos } from './log-follower.js';
import { dockerScope } from './scope.js';
import { VolumeManager } from './volumes.js';

/** Options of the docker provider. */
export interface DockerProviderOptions {
  /** The engine; default: from DOCKER_HOST (and DOCKER_TLS_VERIFY, DOCKER_CERT_PATH), else the local socket. */
  docker?: Docker;
  /** Where logs and the provider's own records go; default: the store's home. */
  home?: string;
  /** The bridge network instances join, made by the provider when missing; default `imago`. */
  network?: string;
}

/** Log followers by container id, shared by every provider object of this process (one copy per line). */
const followers = new Map<string, LogFollower>();
/** Instances this process is destroying: its own signals are not drift. */
const destroying = new Set<string>();
/** Containers this process signalled, and when: their kill events are imago's own, not drift. */
const signalled = new Map<string, number>();
/** Log catch-ups in progress, by container id. */
const settling = new Map<string, Promise<void>>();
/** Events are read again at most this often (list runs on every tick of a deploy). */
const EVENTS_EVERY_MS = 200;
/** How long an exited instance's log may take to reach its file. */
const LOG_SETTLE_MS = 5_000;
/** How long a container has to die after SIGKILL. */
const KILL_WAIT_MS = 10_000;
/** How long a broken event stream waits before it is opened again. */
const EVENTS_RETRY_MS = 1_000;
/** Engine actions a watcher reports as `changed` (drift to read at the next list). */
const CHANGE_ACTIONS = new Set(['exec_start', 'extract-to-dir', 'pause', 'unpause', 'update', 'rename', 'restart', 'kill', 'destroy']);

/** What a container was when imago made it: later differences are drift. */
interface CreatedRecord {
  containerId: string;
  image: string;
  env: string[];
  labels: Record<string, string>;
}

/**
 * Instances as sealed containers on a Docker Engine (see containerCreateOptions for the
 * seal). Images come from imago's store by digest (ImageLoader), volumes are Docker named
 * volumes (VolumeManager), and each container's stdout and stderr are copied into the same
 * per-instance output files the process provider writes (LogFollower). What runs is found by label, so a new
 * provider object — a restarted control plane — adopts the running containers as they are.
 * Changes made from outside (docker exec, cp, pause, stop, update) are read from the
 * engine's events and reported as the instance's drift.
 */
export class DockerProvider implements Provider {
  readonly name = 'docker';
  readonly docker: Docker;
  private readonly home: string;
  private readonly network: string;
  private readonly images: ImageLoader;
  /** Each instance's stdout and stderr, copied from the engine by its LogFollower. */
  private readonly output: OutputFiles;
  private readonly owned = new Set<string>();
  private readonly caughtUp = new Set<string>();
  /** The last look at each container: its engine state and what it was then. */
  private readonly seen = new Map<string, { state: string; instance: ProviderInstance }>();
  private setup: Promise<{ scope: string; volumes: VolumeManager }> | undefined;
  private drift: Map<string, string[]> | undefined;
  private eventsReadAt = 0;
  private eventsSince: number | undefined;
  /** The engine's clock minus this machine's, in ms. */
  private clockOffset = 0;
  private closed = false;
  private readonly listeners = new Set<(event: ProviderEvent) => void>();
  private events: { stop: () => void } | undefined;

  constructor(
    private readonly store: ImageStore,
    options: DockerProviderOptions = {},
  ) {
    this.docker = options.docker ?? new Docker();
    this.home = options.home ?? store.home;
    this.network = options.network ?? NETWORK;
    this.images = new ImageLoader(this.docker, store, (digest) => this.recordLoaded(digest));
    this.output = new OutputFiles(this.logsDir);
  }

  /** Loads the image into the engine from the store (once per digest). */
  async loadImage(digest: Digest): Promise<void> {
    await this.ready();
    await this.images.ensure(digest);
  }

  /** Creates and starts a sealed container; resolves once it runs. */
  async create(spec: InstanceSpec): Promise<ProviderInstance> {
    if (!/^[a-z0-9][a-z0-9-]{0,80}$/.test(spec.id)) throw new ProviderError(`invalid instance id '${spec.id}': expected lowercase letters, digits and "-"`);
    const { scope, volumes } = await this.ready();
    let image = await this.images.ensure(spec.digest);
    const runtime = (await this.store.config(spec.digest)).config ?? {};
    if ((runtime.Entrypoint ?? []).length + (runtime.Cmd ?? []).length === 0) {
      throw new ProviderError(`failed to start instance '${spec.id}': image ${spec.digest} has no entrypoint or cmd`);
    }
    // An image's VOLUME would get a writable anonymous volume from the engine, past the
    // read-only root: only a declared service volume may sit there.
    const undeclared = Object.keys(runtime.Volumes ?? {}).filter((path) => !spec.volumes.some((v) => v.path === path.replace(/\/+$/, '')));
    if (undeclared.length > 0) {
      throw new ProviderError(
        `failed to start instance '${spec.id}': image ${spec.digest} declares VOLUME ${undeclared.join(', ')}, which would be writable outside the sealed root; declare ${undeclared.length > 1 ? 'them' : 'it'} in the service's volumes instead`,
      );
    }
    const service = spec.labels[Label.service] ?? 'default';
    const volumeNames: Record<string, string> = {};
    // Volumes and file secrets belong to the image's user: resolved once (a named user reads the image's passwd).
    const owner = spec.volumes.length > 0 || (spec.secrets ?? []).length > 0 ? await this.ownerOf(spec.digest, runtime.User) : undefined;
    if (owner) {
      for (const volume of spec.volumes) {
        volumeNames[volume.name] = volumeName(scope, service, volume.name);
        await volumes.ensure(volumeNames[volume.name]!, service, owner, volume.name);
      }
    }
    const secretFiles = owner ? await this.writeSecrets(spec, owner) : [];
    await mkdir(this.logsDir, { recursive: true });
    const options = (image: string) => containerCreateOptions(spec, { image, scope, network: this.network, volumeNames, defaultResources: DEFAULTS.service.resources, secretFiles });
    let container: Docker.Container;
    try {
      container = await this.docker.createContainer(options(image));
    } catch (error) {
      if (statusOf(error) !== 404) {
        await this.removeSecrets(spec.id);
        throw engineError(`failed to create instance '${spec.id}'`, error);
      }
      if (/network/i.test(engineError('', error).message)) {
        // The imago network was removed from outside since this provider made it: make it again.
        await this.ensureNetwork();
      } else {
        // The image was removed from the engine (docker rmi) since it was loaded: load it again.
        this.images.forget(spec.digest);
        image = await this.images.ensure(spec.digest);
      }
      container = await this.docker.createContainer(options(image)).catch(async (again: unknown) => {
        await this.removeSecrets(spec.id);
        throw engineError(`failed to create instance '${spec.id}'`, again);
      });
    }
    try {
      await container.start();
    } catch (error) {
      await container.remove({ force: true, v: true }).catch(() => undefined);
      await this.removeSecrets(spec.id);
      throw engineError(`failed to start instance '${spec.id}'`, error);
    }
    this.follow(container.id, spec.id);
    const created = await container.inspect().catch(() => undefined);
    if (created) await this.writeCreated(spec.id, { containerId: created.Id, image: created.Image, env: [...(created.Config.Env ?? [])].sort(), labels: imagoLabels(created.Config.Labels ?? {}) });
    const instance = await this.inspect(spec.id);
    if (!instance) throw new ProviderError(`failed to start instance '${spec.id}': its container was removed at once (from outside imago?)`);
    return instance;
  }

  /** SIGTERM, SIGKILL after `graceMs`, the rest of the log copied, then the container removed (volumes stay). */
  async destroy(id: string, options: { graceMs: number }): Promise<void> {
    const info = await this.inspectRaw(id);
    if (!info) {
      await this.forget(id);
      return;
    }
    const container = this.docker.getContainer(info.Id);
    destroying.add(id);
    try {
      if (info.State.Running || info.State.Paused || info.State.Restarting) {
        if (info.State.Paused) await container.unpause().catch(() => undefined);
        await this.signal(container, 'SIGTERM');
        if (!(await this.stopped(container, options.graceMs))) {
          await this.signal(container, 'SIGKILL');
          if (!(await this.stopped(container, KILL_WAIT_MS))) throw new ProviderError(`failed to stop instance '${id}': its container survived SIGKILL for ${KILL_WAIT_MS / 1000}s`);
        }
      }
      await this.settleLog(info.Id, id);
      try {
        await container.remove({ force: true, v: true });
      } catch (error) {
        if (statusOf(error) !== 404) throw engineError(`failed to remove instance '${id}'`, error);
      }
      await this.forget(id);
    } finally {
      destroying.delete(id);
    }
  }

  /** Every container of this imago home (running or not), optionally only those with `labels`. */
  async list(labels: Record<string, string> = {}): Promise<ProviderInstance[]> {
    const { scope } = await this.ready();
    let all: Docker.ContainerInfo[];
    try {
      all = await this.docker.listContainers({ all: true, filters: { label: [`${DockerLabel.scope}=${scope}`] } });
    } catch (error) {
      throw engineError('failed to list instances', error);
    }
    // Events are read for every container of the scope (the whole view), then the labels filter.
    await this.readEvents(all);
    const summaries = all.filter((s) => Object.entries(labels).every(([key, value]) => s.Labels[key] === value));
    // A container is inspected again only when its state changed since the last look: list
    // runs on every tick of a deploy, and everything else about a container is fixed.
    const out: ProviderInstance[] = [];
    for (const summary of summaries.sort((a, b) => (a.Labels[DockerLabel.instance] ?? '').localeCompare(b.Labels[DockerLabel.instance] ?? ''))) {
      const id = summary.Labels[DockerLabel.instance];
      if (!id) continue;
      const cached = this.seen.get(summary.Id);
      const instance = cached && cached.state === summary.State ? cached.instance : await this.inspect(id);
      if (!instance) continue;
      // A follower that ended while its container runs (the engine restarted) starts again.
      if (instance.state === 'running') this.follow(summary.Id, id);
      this.seen.set(summary.Id, { state: summary.State, instance });
      out.push({ ...instance, drift: this.driftOf(id, summary.Created * 1000, summary.State === 'paused') });
    }
    const present = new Set(all.map((s) => s.Id));
    for (const containerId of this.seen.keys()) if (!present.has(containerId)) this.seen.delete(containerId);
    if (labels[Label.service]) out.push(...(await this.foreign(labels)));
    return out;
  }

  /**
   * Containers that carry imago's labels for a service but no scope: made by hand (or by a
   * tool) to look like instances. Reported, never touched. (Another imago home's containers
   * carry its own scope, and are not listed at all.)
   */
  private async foreign(labels: Record<string, string>): Promise<ProviderInstance[]> {
    let found: Docker.ContainerInfo[];
    try {
      found = await this.docker.listContainers({ all: true, filters: { label: [`${Label.service}=${labels[Label.service]}`] } });
    } catch (error) {
      throw engineError('failed to list instances', error);
    }
    return found
      .filter((c) => c.Labels[DockerLabel.scope] === undefined && Object.entries(labels).every(([key, value]) => c.Labels[key] === value))
      .map((c) => ({
        id: (c.Names[0] ?? c.Id).replace(/^\//, ''),
        labels: imagoLabels(c.Labels),
        digest: (c.Labels[Label.digest] ?? '') as Digest,
        state: c.State === 'running' || c.State === 'paused' ? ('running' as const) : ('exited' as const),
        address: { host: '127.0.0.1', port: c.Ports.find((p) => p.IP === '127.0.0.1')?.PublicPort ?? 0 },
        startedAt: c.Created * 1000,
        exitCode: undefined,
        drift: [],
        foreign: true,
      }));
  }

  /** SIGKILL, as a crash would; the container stays (exited) until destroyed. */
  async kill(id: string): Promise<void> {
    const info = await this.inspectRaw(id);
    if (!info || !(info.State.Running || info.State.Paused || info.State.Restarting)) return;
    const container = this.docker.getContainer(info.Id);
    await this.signal(container, 'SIGKILL');
    if (!(await this.stopped(container, KILL_WAIT_MS))) throw new ProviderError(`failed to kill instance '${id}': its container survived SIGKILL for ${KILL_WAIT_MS / 1000}s`);
  }

  /**
   * The CPU and memory of each running instance among `ids`, from the engine's one-shot stats:
   * CPU time in use since the container started, and memory as `docker stats` counts it (its
   * usage less the inactive page cache).
   */
  async usage(ids: string[]): Promise<Map<string, InstanceUsage>> {
    const out = new Map<string, InstanceUsage>();
    await Promise.all(
      ids.map(async (id) => {
        const info = await this.inspectRaw(id).catch(() => undefined);
        if (!info?.State.Running) return;
        const stats = (await this.docker
          .getContainer(info.Id)
          .stats({ stream: false, 'one-shot': true })
          .catch(() => undefined)) as { cpu_stats?: { cpu_usage?: { total_usage?: number } }; memory_stats?: { usage?: number; stats?: Record<string, number | undefined> } } | undefined;
        const usage = stats?.memory_stats?.usage;
        if (usage === undefined) return;
        const cache = stats?.memory_stats?.stats?.inactive_file ?? stats?.memory_stats?.stats?.total_inactive_file ?? 0;
        out.set(id, { cpuSeconds: (stats?.cpu_stats?.cpu_usage?.total_usage ?? 0) / 1e9, memoryBytes: Math.max(0, usage - cache) });
      }),
    );
    return out;
  }

  /** Tells `listener` of exits and outside changes as the engine's event stream reports them. */
  watch(listener: (event: ProviderEvent) => void): () => void {
    this.listeners.add(listener);
    if (!this.events) this.events = this.streamEvents();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) {
        this.events?.stop();
        this.events = undefined;
      }
    };
  }

  /** Follows the engine's events for this scope, opening the stream again when it breaks. */
  private streamEvents(): { stop: () => void } {
    let stopped = false;
    let current: NodeJS.ReadableStream | undefined;
    let retry: NodeJS.Timeout | undefined;
    const open = async () => {
      if (stopped) return;
      try {
        const { scope } = await this.ready();
        const stream = (await this.docker.getEvents({ filters: { type: ['container'], label: [`${DockerLabel.scope}=${scope}`] } })) as unknown as NodeJS.ReadableStream;
        if (stopped) return (stream as unknown as { destroy?: () => void }).destroy?.();
        current = stream;
        let buffer = '';
        stream.on('data', (chunk: Buffer) => {
          buffer += chunk.toString('utf8');
          const lines = buffer.split('\n');
          buffer = lines.pop() ?? '';
          for (const line of lines) if (line.trim()) this.onEngineEvent(JSON.parse(line) as EngineEvent);
        });
        stream.once('end', again);
        stream.once('error', again);
      } catch {
        again();
      }
    };
    const again = () => {
      current = undefined;
      if (!stopped) {
        retry = setTimeout(() => void open(), EVENTS_RETRY_MS);
        retry.unref();
      }
    };
    void open();
    return {
      stop: () => {
        stopped = true;
        clearTimeout(retry);
        (current as unknown as { destroy?: () => void } | undefined)?.destroy?.();
      },
    };
  }

  private onEngineEvent(event: EngineEvent): void {
    const id = event.Actor?.Attributes?.[DockerLabel.instance];
    const action = (event.Action ?? '').split(':')[0]!.trim();
    if (!id) return;
    if (action === 'die') this.emit({ id, kind: 'exited' });
    else if (CHANGE_ACTIONS.has(action)) {
      this.eventsReadAt = 0; // the next list reads the events again at once
      this.emit({ id, kind: 'changed' });
    }
  }

  private emit(event: ProviderEvent): void {
    for (const listener of [...this.listeners]) listener(event);
  }

  /** One instance, or undefined (also for a container of another home or tool). */
  async inspect(id: string): Promise<ProviderInstance | undefined> {
    const info = await this.inspectRaw(id);
    if (!info) return undefined;
    // `created`: made and not started yet (a create in progress): it counts as starting, and has no log to settle.
    const created = info.State.Status === 'created';
    const running = info.State.Running || info.State.Paused || info.State.Restarting || created;
    // An exited one's last lines reach its log file by the time destroy resolves; a list never waits for them.
    if (running && !created) this.follow(info.Id, id);
    const labels: Record<string, string> = {};
    for (const [key, value] of Object.entries(info.Config.Labels ?? {})) {
      if (key.startsWith('imago.') && key !== DockerLabel.scope && key !== DockerLabel.instance && key !== DockerLabel.port) labels[key] = value;
    }
    const instance: ProviderInstance = {
      id,
      labels,
      digest: info.Config.Labels[Label.digest] as Digest,
      state: running ? 'running' : 'exited',
      address: { host: '127.0.0.1', port: Number(info.Config.Labels[DockerLabel.port]) },
      // A container never started says it started in year 1.
      startedAt: Date.parse(info.State.StartedAt) > 0 ? Date.parse(info.State.StartedAt) : Date.parse(info.Created),
      exitCode: running ? undefined : info.State.ExitCode,
      drift: [...this.driftOf(id, Date.parse(info.Created), info.State.Paused), ...(await this.changedSinceCreated(id, info))],
    };
    return instance;
  }

  /**
   * Whether the container of this name is the one imago made: a container's image, env and
   * labels cannot change in place, so another container in its place (removed and made again
   * with the same name and labels) is the one way it differs — and then it differs in all.
   */
  private async changedSinceCreated(id: string, info: Docker.ContainerInspectInfo): Promise<string[]> {
    const created = await this.readCreated(id);
    if (!created || created.containerId === info.Id) return [];
    const differs = [info.Image !== created.image ? 'its image' : '', [...(info.Config.Env ?? [])].sort().join('\0') !== created.env.join('\0') ? 'its environment' : '', JSON.stringify(imagoLabels(info.Config.Labels ?? {})) !== JSON.stringify(created.labels) ? 'its labels' : ''].filter(Boolean);
    return [`replaced outside imago: container ${info.Id.slice(0, 12)} is not the ${created.containerId.slice(0, 12)} imago made${differs.length ? ` (${differs.join(', ')} differ)` : ''}`];
  }

  private createdFile(id: string): string {
    return join(this.home, 'docker', 'instances', `${id}.json`);
  }

  private async writeCreated(id: string, record: CreatedRecord): Promise<void> {
    await mkdir(join(this.home, 'docker', 'instances'), { recursive: true });
    await writeFile(`${this.createdFile(id)}.tmp`, JSON.stringify(record));
    await rename(`${this.createdFile(id)}.tmp`, this.createdFile(id));
  }

  private async readCreated(id: string): Promise<CreatedRecord | undefined> {
    return readFile(this.createdFile(id), 'utf8').then((text) => JSON.parse(text) as CreatedRecord, () => undefined);
  }

  /**
   * The drift recorded for an instance, without lines older than its container (they were
   * about a container of the same name, removed before), and a pause its state shows.
   */
  private driftOf(id: string, createdAt: number, paused: boolean): string[] {
    const recorded = (this.drift?.get(id) ?? []).filter((line) => !(Date.parse(line.slice(0, 24)) < createdAt - 1000));
    if (paused && !recorded.some((line) => line.includes('docker pause'))) recorded.push('paused (docker pause)');
    return recorded;
  }

  /**
   * Removes this home's named volumes (of one service, or all) that no container uses, and
   * returns their names: data is deleted only when asked for, never by a deploy or a destroy.
   */
  async removeVolumes(service?: string): Promise<string[]> {
    const { scope } = await this.ready();
    const label = [`${DockerLabel.scope}=${scope}`, ...(service ? [`${Label.service}=${service}`] : [])];
    let names: string[];
    try {
      names = ((await this.docker.listVolumes({ filters: { label } })).Volumes ?? []).map((v) => v.Name).sort();
    } catch (error) {
      throw engineError('failed to list volumes', error);
    }
    const removed: string[] = [];
    for (const name of names) {
      try {
        await this.docker.getVolume(name).remove();
        removed.push(name);
      } catch (error) {
        if (statusOf(error) !== 409) throw engineError(`failed to remove volume '${name}'`, error); // 409: in use, kept
      }
    }
    return removed;
  }

  /**
   * Removes from the engine the images this home loaded that `keep` does not name (gc passes
   * every digest a tag or release refers to), unless a container uses them; returns what it
   * removed (or, with `dryRun`, would remove). Images only other homes loaded are not touched
   * (one that another home loaded too is loaded again when that home next needs it).
   */
  async pruneImages(keep: ReadonlySet<Digest>, options: { dryRun?: boolean } = {}): Promise<{ removed: Digest[]; kept: Digest[] }> {
    const recorded = await this.loadedRecord();
    const removed: Digest[] = [];
    const kept: Digest[] = [];
    for (const digest of recorded) {
      if (keep.has(digest)) {
        kept.push(digest);
        continue;
      }
      if (options.dryRun) {
        removed.push(digest);
        continue;
      }
      try {
        await this.docker.getImage(imageRef(digest)).remove();
        removed.push(digest);
      } catch (error) {
        if (statusOf(error) === 404) removed.push(digest); // already gone from the engine
        else if (statusOf(error) === 409) kept.push(digest); // a container uses it
        else throw engineError(`failed to remove image ${digest} from the engine`, error);
      }
      this.images.forget(digest);
    }
    if (!options.dryRun) await this.writeLoadedRecord(kept);
    return { removed, kept };
  }

  /** Stops following logs (a later provider object goes on from where this one stopped). */
  async close(): Promise<void> {
    this.closed = true;
    this.events?.stop();
    this.events = undefined;
    this.listeners.clear();
    const mine = [...this.owned].map((containerId) => {
      const follower = followers.get(containerId);
      followers.delete(containerId);
      return follower?.close();
    });
    this.owned.clear();
    await Promise.all(mine);
  }

  private get logsDir(): string {
    return join(this.home, 'logs');
  }

  private get driftDir(): string {
    return join(this.home, 'docker', 'drift');
  }

  /** Reads an instance's output from the files its log follower copies the engine's streams into. */
  readOutput(id: string, stream: OutputStream, position: number, buffer: Buffer): Promise<OutputRead> {
    return this.output.read(id, stream, position, buffer);
  }

  /** Removes an instance's output files. */
  async forgetOutput(id: string): Promise<void> {
    await this.output.forget(id);
  }

  /** The scope and the network, made once per provider object. */
  private ready(): Promise<{ scope: string; volumes: VolumeManager }> {
    this.setup ??= (async () => {
      const scope = await dockerScope(this.home);
      await this.ensureNetwork();
      // Event times are the engine's: read them against its clock, not this machine's.
      const asked = Date.now();
      const systemTime = (await this.docker.info().catch(() => ({}))) as { SystemTime?: string };
      const engineNanos = systemTime.SystemTime ? timestampNanos(systemTime.SystemTime) : undefined;
      this.clockOffset = engineNanos === undefined ? 0 : Number(engineNanos / 1_000_000n) - Math.round((asked + Date.now()) / 2);
      return { scope, volumes: new VolumeManager(this.docker, scope) };
    })();
    this.setup.catch(() => (this.setup = undefined)); // try again next time (dockerd may come up)
    return this.setup;
  }

  /** The `imago` bridge network: containers reach the host's published ports, not each other. */
  private async ensureNetwork(): Promise<void> {
    try {
      const info = (await this.docker.getNetwork(this.network).inspect()) as { Driver?: string; Options?: Record<string, string>; Labels?: Record<string, string> };
      if (info.Driver !== 'bridge' || info.Options?.['com.docker.network.bridge.enable_icc'] !== 'false' || info.Labels?.['imago.managed'] !== 'true') {
        throw new ProviderError(
          `the engine's network '${this.network}' was not made by imago (expected a bridge labelled imago.managed=true with inter-container traffic off; it is a ${info.Driver ?? '?'} network): remove or rename it (docker network rm ${this.network})`,
        );
      }
      return;
    } catch (error) {
      if (statusOf(error) !== 404) throw engineError(`failed to inspect network '${this.network}'`, error);
    }
    try {
      await this.docker.createNetwork({
        Name: this.network,
        Driver: 'bridge',
        CheckDuplicate: true,
        Labels: { 'imago.managed': 'true' },
        Options: { 'com.docker.network.bridge.enable_icc': 'false' },
      });
    } catch (error) {
      if (statusOf(error) !== 409) throw engineError(`failed to create network '${this.network}'`, error);
    }
  }

  /** The container of instance `id` in this scope, or undefined. */
  private async inspectRaw(id: string): Promise<Docker.ContainerInspectInfo | undefined> {
    const { scope } = await this.ready();
    try {
      const info = await this.docker.getContainer(id).inspect();
      if (info.Config.Labels?.[DockerLabel.scope] !== scope || info.Config.Labels[DockerLabel.instance] !== id) return undefined;
      if (!isDigest(info.Config.Labels[Label.digest] ?? '')) return undefined;
      return info;
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw engineError(`failed to inspect instance '${id}'`, error);
    }
  }

  /** Starts copying a container's output into its log file, unless someone here already does. */
  private follow(containerId: string, id: string): void {
    if (this.closed || followers.has(containerId)) return;
    const follower = new LogFollower(this.docker, containerId, this.output, id);
    followers.set(containerId, follower);
    this.owned.add(containerId);
    this.caughtUp.delete(containerId);
    void follower.done.then(() => {
      if (followers.get(containerId) === follower) followers.delete(containerId);
      this.owned.delete(containerId);
      // Only a follower that saw the container stop has every line; a closed or broken one has not.
      if (follower.complete) this.caughtUp.add(containerId);
    });
  }

  /** Waits until a stopped container's last lines are in its log file. */
  private async settleLog(containerId: string, id: string): Promise<void> {
    if (this.caughtUp.has(containerId)) return;
    const follower = followers.get(containerId);
    if (follower) {
      await Promise.race([follower.done, new Promise((resolve) => setTimeout(resolve, LOG_SETTLE_MS).unref())]);
      return;
    }
    // Stopped before anyone here followed it (adopted after a restart): copy what is left,
    // once for every caller of this process (two copies would write the lines twice).
    let pending = settling.get(containerId);
    if (!pending) {
      pending = (async () => {
        await mkdir(this.logsDir, { recursive: true });
        const catchUp = new LogFollower(this.docker, containerId, this.output, id);
        const settled = await Promise.race([catchUp.done.then(() => true), new Promise<false>((resolve) => setTimeout(() => resolve(false), LOG_SETTLE_MS).unref())]);
        if (!settled) await catchUp.close(); // a container that runs again (restarted from outside): its follower is the list's
        if (catchUp.complete) this.caughtUp.add(containerId);
      })().finally(() => settling.delete(containerId));
      settling.set(containerId, pending);
    }
    await pending;
  }

  private async signal(container: Docker.Container, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    signalled.set(container.id, Date.now());
    for (const [id, at] of signalled) if (Date.now() - at > 10 * 60_000) signalled.delete(id);
    try {
      await container.kill({ signal });
    } catch (error) {
      // 409: not running (it stopped meanwhile); 404: gone.
      if (statusOf(error) !== 409 && statusOf(error) !== 404) throw engineError(`failed to send ${signal} to '${container.id}'`, error);
    }
  }

  /** Whether the container stopped within `ms`. */
  private async stopped(container: Docker.Container, ms: number): Promise<boolean> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), ms);
    try {
      await container.wait({ condition: 'not-running', abortSignal: abort.signal });
      return true;
    } catch (error) {
      if (abort.signal.aborted) return false;
      if (statusOf(error) === 404) return true;
      throw engineError(`failed to wait for '${container.id}' to stop`, error);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The numeric owner of the instance's volumes: the image's user, looked up in its files when named. */
  private async ownerOf(digest: Digest, user: string | undefined): Promise<{ uid: number; gid: number }> {
    if (!user || /^\d+(:\d+)?$/.test(user)) {
      const [uid, gid] = (user ?? '0').split(':').map(Number) as [number, number | undefined];
      return { uid, gid: gid ?? uid };
    }
    const root = await new RootfsCache(this.store, join(this.home, 'rootfs')).ensure(digest);
    return resolveUser(root, user);
  }

  /**
   * Reads the engine's events since the last read (since the oldest container at first) and
   * records drift, kept in `<home>/docker/drift/<id>` so it outlives the engine's short event
   * memory and a restart of imago.
   */
  private async readEvents(containers: Docker.ContainerInfo[]): Promise<void> {
    if (Date.now() - this.eventsReadAt < EVENTS_EVERY_MS) return;
    const { scope } = await this.ready();
    if (!this.drift) this.drift = await this.loadDrift(new Set(containers.map((c) => c.Labels[DockerLabel.instance] ?? '')));
    const now = Date.now();
    const engineNow = now + this.clockOffset;
    const until = Number((engineNow / 1000).toFixed(3));
    const oldest = Math.min(...containers.map((c) => c.Created));
    const since = Math.min(this.eventsSince ?? (Number.isFinite(oldest) ? oldest - 1 : Math.floor(engineNow / 1000) - 1), Math.floor(until) - 1);
    const current = new Set(containers.map((c) => c.Id));
    let events: EngineEvent[];
    // `until` is a moment already past on the engine's clock (to the millisecond): it answers at once.
    try {
      const stream = (await this.docker.getEvents({ since, until, filters: { type: ['container'], label: [`${DockerLabel.scope}=${scope}`] } })) as unknown as NodeJS.ReadableStream;
      let text = '';
      for await (const chunk of stream as AsyncIterable<Buffer>) text += chunk.toString('utf8');
      events = text.split('\n').filter((line) => line.trim()).map((line) => JSON.parse(line) as EngineEvent);
    } catch (error) {
      throw engineError('failed to read the engine events', error);
    }
    this.eventsReadAt = now;
    this.eventsSince = Math.floor(until) - 1; // overlapping by a second: lines already seen are skipped
    for (const event of events) {
      const found = driftOf(event);
      if (!found || destroying.has(found.instance)) continue;
      // Only containers that still exist: a removed one has no drift left to report.
      if (!current.has(event.Actor?.ID ?? '')) continue;
      const ownSignal = signalled.get(event.Actor?.ID ?? '');
      if (event.Action === 'kill' && ownSignal !== undefined && found.at >= ownSignal + this.clockOffset - 2_000) continue;
      const lines = this.drift.get(found.instance) ?? [];
      if (lines.includes(found.line)) continue;
      lines.push(found.line);
      this.drift.set(found.instance, lines);
      await mkdir(this.driftDir, { recursive: true });
      await writeFile(join(this.driftDir, found.instance), `${lines.join('\n')}\n`);
    }
  }

  /** The recorded drift of the instances in `existing`; records of instances gone are deleted. */
  private async loadDrift(existing: Set<string>): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    for (const name of await readdir(this.driftDir).catch(() => [] as string[])) {
      if (!existing.has(name)) {
        await rm(join(this.driftDir, name), { force: true });
        continue;
      }
      const text = await readFile(join(this.driftDir, name), 'utf8').catch(() => '');
      out.set(name, text.split('\n').filter(Boolean));
    }
    return out;
  }

  private get loadedFile(): string {
    return join(this.home, 'docker', 'images');
  }

  /** Adds a digest to the home's record of images it put on the engine. */
  private async recordLoaded(digest: Digest): Promise<void> {
    const recorded = await this.loadedRecord();
    if (recorded.includes(digest)) return;
    await mkdir(join(this.home, 'docker'), { recursive: true });
    await appendFile(this.loadedFile, `${digest}\n`);
  }

  private async loadedRecord(): Promise<Digest[]> {
    const text = await readFile(this.loadedFile, 'utf8').catch(() => '');
    return [...new Set(text.split('\n').filter((line): line is Digest => isDigest(line)))];
  }

  private async writeLoadedRecord(digests: Digest[]): Promise<void> {
    await mkdir(join(this.home, 'docker'), { recursive: true });
    const tmp = `${this.loadedFile}.tmp`;
    await writeFile(tmp, digests.map((d) => `${d}\n`).join(''));
    await rename(tmp, this.loadedFile);
  }

  /** Drops what the provider kept about a removed instance (its log file stays). */
  /**
   * An instance's file secrets, each a file of mode 0400 owned by the image's user on a host
   * tmpfs (`/dev/shm/imago-secrets/<id>`, never the state folder), bound read-only into the
   * container. Environment-variable secrets are refused: the engine shows a container's
   * environment to anyone who may inspect it.
   */
  private async writeSecrets(spec: InstanceSpec, owner: { uid: number; gid: number }): Promise<Array<{ source: string; target: string }>> {
    const secrets = spec.secrets ?? [];
    const asEnv = secrets.find((s) => 'env' in s);
    if (asEnv) throw new ProviderError(`failed to start instance '${spec.id}': secret "${asEnv.name}" is asked for as an environment variable, which docker inspect would show; on the docker provider give it as a file (/run/secrets/…)`);
    if (secrets.length === 0) return [];
    const dir = this.secretsDir(spec.id);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const out: Array<{ source: string; target: string }> = [];
    for (const s of secrets) {
      if (!('file' in s)) continue;
      const source = join(dir, s.name);
      await writeFile(source, s.value, { mode: 0o400 });
      await chown(source, owner.uid, owner.gid);
      out.push({ source, target: s.file });
    }
    return out;
  }

  /** Where an instance's file secrets are kept on the host while it runs. */
  private secretsDir(id: string): string {
    return join('/dev/shm', 'imago-secrets', id);
  }

  private async removeSecrets(id: string): Promise<void> {
    await rm(this.secretsDir(id), { recursive: true, force: true });
  }

  private async forget(id: string): Promise<void> {
    await this.removeSecrets(id);
    this.drift?.delete(id);
    await rm(join(this.driftDir, id), { force: true });
    await rm(this.createdFile(id), { force: true });
    await rm(LogFollower.positionFile(this.output, id), { force: true });
  }
}

/** A container's imago labels, sorted, without the provider's own (scope, instance, port). */
function imagoLabels(labels: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(labels).sort()) if (key.startsWith('imago.') && key !== DockerLabel.scope && key !== DockerLabel.instance && key !== DockerLabel.port) out[key] = labels[key]!;
  return out;
}

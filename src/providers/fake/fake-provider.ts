import { createServer, type Server } from 'node:http';
import { mergeEnv } from '../../bake/image-config.js';
import { ProviderError } from '../../errors.js';
import type { HealthCheck, ProbeAddress, ProbeResult } from '../../health/probe.js';
import type { Digest } from '../../oci/digest.js';
import type { ImageStore } from '../../store/image-store.js';
import { systemClock, type Clock } from '../../util/clock.js';
import type { InstanceSpec, OutputRead, OutputStream, Provider, ProviderEvent, ProviderInstance } from '../provider.js';

/** One instance in the fake world. */
interface FakeInstance {
  spec: InstanceSpec;
  env: Array<[string, string]>;
  state: 'running' | 'exited';
  startedAt: number;
  exitCode: number | undefined;
  /** It answers health checks from this time on (a slow start), unless hung. */
  readyAt: number;
  hung: boolean;
  drift: string[];
  /** It dies by itself at this time (an image that crashes). */
  diesAt: number | undefined;
  cancelDeath?: () => void;
  server?: Server;
}

/** What a fake world is made of: shared by every provider object on it, as a real machine is. */
export class FakeWorld {
  readonly instances = new Map<string, FakeInstance>();
  /** Volume contents by `<service>/<volume>`, kept across instances. */
  readonly volumes = new Map<string, Map<string, string>>();
  readonly listeners = new Set<(event: ProviderEvent) => void>();
  /** What each instance printed, by stream: kept past the instance until forgotten, as the real providers do. */
  readonly output = new Map<string, Record<OutputStream, Buffer>>();
  /** Every create and destroy, in order (scenario tables check what was touched). */
  readonly journal: string[] = [];
  /** Faults for the next creates. */
  next: { startMs: number; failCreates: number; failMessage: string; exitAfterMs: number | undefined; exitCode: number } = {
    startMs: 50,
    failCreates: 0,
    failMessage: 'the engine answered 500',
    exitAfterMs: undefined,
    exitCode: 1,
  };

  constructor(readonly clock: Clock = systemClock) {}

  emit(event: ProviderEvent): void {
    for (const listener of [...this.listeners]) listener(event);
  }
}

/** Options of a fake provider. */
export interface FakeProviderOptions {
  /** The world it works on (default: a new one). Two providers on one world see the same instances (a restart). */
  world?: FakeWorld;
  /** Reads image configs (env, user, workdir) from here; without it, instances have only their own env. */
  store?: ImageStore;
  /** Serve each instance's port for real on loopback (the shared suite's HTTP checks); default false. */
  serveHttp?: boolean;
}

/**
 * An in-memory provider with controllable time and faults (crash, hang, slow start, lost,
 * failing creates, an image that keeps dying), so the control loop is tested by scenario
 * tables in milliseconds. It keeps the Provider contract: labels, adoption by a new object on
 * the same world, exit codes, grace then kill, volumes kept across instances. It models no
 * sandbox. With `serveHttp` each instance answers the test fixture app's protocol on its port
 * (test/fixtures/instance-app.mjs), so it runs the shared provider suite.
 */
export class FakeProvider implements Provider {
  readonly name = 'fake';
  readonly world: FakeWorld;
  private readonly clock: Clock;

  constructor(private readonly options: FakeProviderOptions = {}) {
    this.world = options.world ?? new FakeWorld();
    this.clock = this.world.clock;
  }

  /** Nothing to load: the fake runs no image. */
  async loadImage(_digest: Digest): Promise<void> {}

  /** Starts an instance (or fails, when told to); it answers probes after the configured start time. */
  async create(spec: InstanceSpec): Promise<ProviderInstance> {
    const world = this.world;
    if (world.instances.has(spec.id)) throw new ProviderError(`failed to start instance '${spec.id}': it exists`);
    if (world.next.failCreates > 0) {
      world.next.failCreates--;
      throw new ProviderError(`failed to start instance '${spec.id}': ${world.next.failMessage}`);
    }
    const image = this.options.store ? ((await this.options.store.config(spec.digest)).config ?? {}) : {};
    const env = mergeEnv(image.Env ?? [], [...spec.env, ['PORT', String(spec.port)], ['HOST', '127.0.0.1']]);
    const now = this.clock.now();
    const instance: FakeInstance = { spec, env, state: 'running', startedAt: now, exitCode: undefined, readyAt: now + world.next.startMs, hung: false, drift: [], diesAt: undefined };
    world.instances.set(spec.id, instance);
    world.journal.push(`create ${spec.id}`);
    const value = (name: string) => env.find(([k]) => k === name)?.[1];
    if (value('CRASH')) {
      this.print(spec.id, 'stderr', 'crashing on purpose\n');
      this.exit(instance, Number(value('CRASH')));
    } else if (world.next.exitAfterMs !== undefined) {
      const code = world.next.exitCode;
      instance.diesAt = now + world.next.exitAfterMs;
      instance.cancelDeath = this.clock.setTimer(() => this.exit(instance, code), world.next.exitAfterMs);
    }
    if (this.options.serveHttp && instance.state === 'running') await this.serve(instance, { uid: Number((image.User ?? '0').split(':')[0]) || 0, gid: Number((image.User ?? '0:0').split(':')[1] ?? 0) || 0, cwd: image.WorkingDir ?? '/' });
    return this.toInstance(instance);
  }

  /** SIGTERM (an instance with STUBBORN set ignores it), then a kill after `graceMs`; removes it, its log stays. */
  async destroy(id: string, options: { graceMs: number }): Promise<void> {
    const instance = this.world.instances.get(id);
    if (!instance) return;
    if (instance.state === 'running') {
      const stubborn = instance.env.some(([k, v]) => k === 'STUBBORN' && v);
      this.print(id, 'stdout', stubborn ? 'ignoring SIGTERM\n' : 'SIGTERM: goodbye\n');
      if (stubborn) await new Promise<void>((resolve) => this.clock.setTimer(resolve, options.graceMs));
      this.exit(instance, stubborn ? 137 : 0, { quiet: true });
    }
    await this.unserve(instance);
    this.world.instances.delete(id);
    this.world.journal.push(`destroy ${id}`);
  }

  /** Every instance of the world, optionally only those with `labels`. */
  async list(labels: Record<string, string> = {}): Promise<ProviderInstance[]> {
    return [...this.world.instances.values()]
      .filter((i) => Object.entries(labels).every(([key, value]) => i.spec.labels[key] === value))
      .sort((a, b) => (a.spec.id < b.spec.id ? -1 : 1))
      .map((i) => this.toInstance(i));
  }

  /** One instance, or undefined. */
  async inspect(id: string): Promise<ProviderInstance | undefined> {
    const instance = this.world.instances.get(id);
    return instance ? this.toInstance(instance) : undefined;
  }

  /** Kills it at once (exit 137), as a crash would. */
  async kill(id: string): Promise<void> {
    const instance = this.world.instances.get(id);
    if (instance?.state === 'running') this.exit(instance, 137);
  }

  /** Tells `listener` about exits and outside changes as they happen. */
  watch(listener: (event: ProviderEvent) => void): () => void {
    this.world.listeners.add(listener);
    return () => this.world.listeners.delete(listener);
  }

  /** Nothing to let go of: instances keep "running" in their world. */
  async close(): Promise<void> {}

  // Faults, as scenario tables cause them.

  /** The instance crashes with `code`. */
  crash(id: string, code = 1): void {
    const instance = this.must(id);
    if (instance.state === 'running') this.exit(instance, code);
  }

  /** The instance stops answering its health checks (and requests), but runs on. */
  hang(id: string): void {
    this.must(id).hung = true;
  }

  /** The instance vanishes from the provider's view without being destroyed (a lost host, a manual `docker rm`). */
  lose(id: string): void {
    const instance = this.must(id);
    instance.cancelDeath?.();
    void this.unserve(instance);
    this.world.instances.delete(id);
    this.world.journal.push(`lost ${id}`);
  }

  /** Something was done to the instance from outside (one drift line). */
  tamper(id: string, line: string): void {
    this.must(id).drift.push(line);
    this.world.emit({ id, kind: 'changed' });
  }

  /**
   * Answers a health probe as the instance would: passes once it is running, past its start
   * time and not hung; a hung one times out; a dead one refuses. The loop's health watchers
   * use it instead of real connections.
   */
  readonly probe = async (check: HealthCheck, address: ProbeAddress, timeoutMs: number): Promise<ProbeResult> => {
    const at = this.clock.now();
    const instance = [...this.world.instances.values()].find((i) => i.spec.port === address.port);
    const label = check.kind === 'http' ? `GET ${check.path}` : `TCP 127.0.0.1:${address.port}`;
    if (!instance || instance.state !== 'running') return { ok: false, at, ms: 0, detail: `${label} → connection refused` };
    if (instance.hung) {
      await new Promise<void>((resolve) => this.clock.setTimer(resolve, timeoutMs));
      return { ok: false, at, ms: timeoutMs, detail: `${label} → timed out after ${timeoutMs}ms` };
    }
    if (at < instance.readyAt) return { ok: false, at, ms: 0, detail: `${label} → connection refused` };
    return { ok: true, at, ms: 0, detail: `${label} → ${check.kind === 'http' ? '200' : 'connected'} in 0ms` };
  };

  private must(id: string): FakeInstance {
    const instance = this.world.instances.get(id);
    if (!instance) throw new ProviderError(`fake: no instance '${id}'`);
    return instance;
  }

  private exit(instance: FakeInstance, code: number, options: { quiet?: boolean } = {}): void {
    if (instance.state === 'exited') return;
    instance.cancelDeath?.();
    instance.state = 'exited';
    instance.exitCode = code;
    void this.unserve(instance);
    if (!options.quiet) this.world.emit({ id: instance.spec.id, kind: 'exited' });
  }

  private toInstance(i: FakeInstance): ProviderInstance {
    return {
      id: i.spec.id,
      labels: { ...i.spec.labels },
      digest: i.spec.digest,
      state: i.state,
      address: { host: '127.0.0.1', port: i.spec.port },
      startedAt: i.startedAt,
      exitCode: i.exitCode,
      drift: [...i.drift],
    };
  }

  /** Adds `text` to what instance `id` printed on `stream` (tests make an instance talk with it). */
  print(id: string, stream: OutputStream, text: string): void {
    let output = this.world.output.get(id);
    if (!output) this.world.output.set(id, (output = { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) }));
    output[stream] = Buffer.concat([output[stream], Buffer.from(text)]);
  }

  /** Reads what `id` printed on `stream`, from memory. */
  async readOutput(id: string, stream: OutputStream, position: number, buffer: Buffer): Promise<OutputRead> {
    const data = this.world.output.get(id)?.[stream] ?? Buffer.alloc(0);
    return { bytes: position >= data.length ? 0 : data.copy(buffer, 0, position), size: data.length };
  }

  /** Forgets what `id` printed. */
  async forgetOutput(id: string): Promise<void> {
    this.world.output.delete(id);
  }

  /** Serves the fixture app's protocol on the instance's port: what it sees, and writes only where it may. */
  private async serve(instance: FakeInstance, image: { uid: number; gid: number; cwd: string }): Promise<void> {
    const env = Object.fromEntries(instance.env);
    const service = instance.spec.labels['imago.service'] ?? 'default';
    const volumeOf = (path: string) => instance.spec.volumes.find((v) => path.startsWith(`${v.path}/`));
    const files = (name: string) => {
      let map = this.world.volumes.get(`${service}/${name}`);
      if (!map) this.world.volumes.set(`${service}/${name}`, (map = new Map()));
      return map;
    };
    const tmp = new Map<string, string>();
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const reply = (code: number, body: unknown) => {
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (instance.hung) return; // never answers
      const path = url.searchParams.get('path') ?? '';
      const volume = volumeOf(path);
      if (url.pathname === '/write') {
        if (path.startsWith('/tmp/')) tmp.set(path, url.searchParams.get('data') ?? 'x');
        else if (volume) files(volume.name).set(path, url.searchParams.get('data') ?? 'x');
        else return reply(500, { code: 'EROFS', message: `EROFS: read-only file system, open '${path}'` });
        return reply(200, { ok: true });
      }
      if (url.pathname === '/read') {
        const data = volume ? files(volume.name).get(path) : tmp.get(path);
        return data === undefined ? reply(500, { code: 'ENOENT' }) : reply(200, { data });
      }
      reply(200, { pid: 1, uid: image.uid, gid: image.gid, env: { GREETING: env.GREETING, PORT: env.PORT }, cwd: image.cwd });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(instance.spec.port, '127.0.0.1', () => resolve());
    });
    instance.server = server;
    this.print(instance.spec.id, 'stdout', `listening on ${instance.spec.port}\n`);
  }

  private async unserve(instance: FakeInstance): Promise<void> {
    const server = instance.server;
    instance.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { ServiceHealth, ServiceSpec } from '../config/types.js';
import { resolveCount } from '../core/count.js';
import { planRollout } from '../core/plan.js';
import { reconcile, type DesiredService, type ObservedInstance } from '../core/reconcile.js';
import type { RolloutLimits } from '../core/rollout.js';
import { DeployError, reasonOf } from '../errors.js';
import { HealthWatcher } from '../health/health-gate.js';
import type { Digest } from '../oci/digest.js';
import type { ImageConfig } from '../oci/types.js';
import { Label, type Provider, type ProviderInstance } from '../providers/provider.js';
import { ServiceRouter } from '../router/service-router.js';
import { createDeploy, finishDeploy } from '../state/deploys.js';
import { getInstance, listInstances, recordInstance, setInstanceState } from '../state/instances.js';
import { acquireLock, releaseLock, renewLock } from '../state/lock.js';
import { createRelease, liveRelease, setReleaseStatus } from '../state/releases.js';
import type { Release } from '../state/types.js';
import type { ImageStore } from '../store/image-store.js';
import { healthFor } from './health-for.js';
import { instanceSpecFor } from './instance-spec.js';
import { freeLoopbackPort } from './ports.js';

/** How a deploy ended. */
export interface DeployResult {
  release: Release;
  outcome: 'live' | 'failed';
  reason?: string;
  /** Instance ids started by this deploy. */
  started: string[];
}

/** One instance in `imago status`. */
export interface InstanceSnapshot {
  id: string;
  release: number | undefined;
  /** `running` or `exited` (the provider's word), or `missing` (gone from the provider, not stopped by imago). */
  state: string;
  health: string;
  routed: boolean;
  address: string;
  startedAt: number;
  exitCode: number | undefined;
  /** Changes made from outside imago, one line each (empty: as created). */
  drift: string[];
}

/** Instance states in which imago still counts on an instance being there. */
const LIVE_STATES = ['starting', 'healthy', 'serving', 'draining'] as const;

/** What the controller needs from its surroundings. */
export interface ControllerContext {
  store: ImageStore;
  provider: Provider;
  /** Who acts (for the ledger). */
  actor: string;
  /** The environment name, for labels. */
  env: string;
}

const LOCK_TTL_MS = 30_000;
const TICK_MS = 50;

/**
 * Runs one service: its router, the health watchers of its instances, and deploys. A deploy
 * writes a release, takes the service lock, and then repeats `reconcile → act → wait` until
 * the fleet is the new release (live) or the deploy fails (the new instances stop and the
 * release serving before keeps serving).
 */
export class ServiceController {
  readonly router: ServiceRouter;
  private readonly watchers = new Map<string, HealthWatcher>();
  private readonly unroutedAt = new Map<string, number>();
  private readonly stopping = new Set<string>();
  private readonly ports = new Set<number>();
  private address: { host: string; port: number } | undefined;
  private wake: (() => void) | undefined;
  /** Who the current deploy acts for (recorded in the ledger). */
  private actor: string;

  constructor(
    private readonly ctx: ControllerContext,
    private service: ServiceSpec,
  ) {
    this.router = new ServiceRouter(service.name, service.listen ?? { host: '127.0.0.1', port: 0 });
    this.actor = ctx.actor;
  }

  /** Starts the router and adopts the running instances of the live release. */
  async start(): Promise<{ host: string; port: number }> {
    this.address = await this.router.start();
    const live = liveRelease(this.ctx.store.db, this.service.name);
    if (live) await this.converge(this.desiredFor(live, undefined), live);
    return this.address;
  }

  /** The router's address. */
  get url(): string {
    if (!this.address) throw new DeployError(`service '${this.service.name}' is not started`);
    return `http://${this.address.host}:${this.address.port}`;
  }

  /**
   * Deploys `digest`: a new release, replaced instances, a health gate, traffic shifted.
   * `service` deploys a changed service config with it (same name and router address).
   */
  async deploy(digest: Digest, options: { rollbackOf?: number; service?: ServiceSpec; actor?: string } = {}): Promise<DeployResult> {
    const db = this.ctx.store.db;
    this.actor = options.actor ?? this.ctx.actor;
    if (options.service) {
      if (options.service.name !== this.service.name) throw new DeployError(`service '${options.service.name}' cannot be deployed by the controller of '${this.service.name}'`);
      this.service = { ...options.service, listen: this.service.listen };
    }
    const owner = `${this.actor}:${process.pid}:${randomBytes(4).toString('hex')}`;
    acquireLock(db, `service:${this.service.name}`, owner, LOCK_TTL_MS);
    try {
      await this.ctx.provider.loadImage(digest);
      const previous = liveRelease(db, this.service.name);
      const release = createRelease(db, { service: this.service.name, digest, config: renderConfig(this.service), createdBy: this.actor, ...(options.rollbackOf ? { rollbackOf: options.rollbackOf } : {}) });
      const limits = limitsFor(this.service);
      const current = (await this.observe(release.id)).filter((i) => i.release !== undefined && i.state === 'running').length;
      const plan = planRollout(this.service.strategy.kind, current, limits);
      const deploy = createDeploy(db, { service: this.service.name, releaseId: release.id, ...(previous ? { fromReleaseId: previous.id } : {}), plan, actor: this.actor });
      setReleaseStatus(db, release.id, 'deploying', undefined, { actor: this.actor });
      const desired = this.desiredFor(release, Date.now());
      const renew = setInterval(() => {
        try {
          renewLock(db, `service:${this.service.name}`, owner, LOCK_TTL_MS);
        } catch {
          // Lost the lock (another owner took it after it expired): the next release call says so.
        }
      }, LOCK_TTL_MS / 3);
      renew.unref();
      try {
        const outcome = await this.converge(desired, release).catch((error: unknown) => ({
          // A provider or engine failure (an image that will not load, a port taken, dockerd
          // gone): the deploy fails with the reason, like a failed health gate.
          failed: { reason: `the deploy stopped: ${reasonOf(error)}`, instances: [] as string[], transcript: undefined as unknown },
          started: [] as string[],
        }));
        if (outcome.failed) {
          setReleaseStatus(db, release.id, 'failed', outcome.failed.reason, { actor: this.actor });
          finishDeploy(db, deploy.id, { state: 'failed', reason: outcome.failed.reason, transcript: outcome.failed.transcript, actor: this.actor });
          // Back to what served before: its instances were never touched while the new ones failed.
          if (previous) await this.converge(this.desiredFor(previous, undefined), previous);
          else await this.retire(release.id);
          return { release: { ...release, status: 'failed' }, outcome: 'failed', reason: outcome.failed.reason, started: outcome.started };
        }
        if (previous) setReleaseStatus(db, previous.id, options.rollbackOf ? 'rolled-back' : 'superseded', undefined, { actor: this.actor });
        const live = setReleaseStatus(db, release.id, 'live', undefined, { actor: this.actor });
        finishDeploy(db, deploy.id, { state: 'succeeded', actor: this.actor });
        return { release: live, outcome: 'live', started: outcome.started };
      } finally {
        clearInterval(renew);
      }
    } finally {
      releaseLock(db, `service:${this.service.name}`, owner);
    }
  }

  /** The service spec this controller runs. */
  get spec(): ServiceSpec {
    return this.service;
  }

  /**
   * The instances as the controller sees them now: provider state, health, routing, and what
   * was done to them from outside imago (drift). An instance imago started and never stopped
   * that the provider no longer has (removed from outside) is listed as `missing`.
   */
  async snapshot(): Promise<InstanceSnapshot[]> {
    const routed = new Set(this.router.routed());
    const listed = await this.ctx.provider.list({ [Label.service]: this.service.name });
    const out: InstanceSnapshot[] = listed.map((i) => ({
      id: i.id,
      release: Number(i.labels[Label.release]) || undefined,
      state: i.state,
      health: i.state === 'exited' ? 'crashed' : (this.watchers.get(i.id)?.status ?? 'unknown'),
      routed: routed.has(i.id),
      address: `${i.address.host}:${i.address.port}`,
      startedAt: i.startedAt,
      exitCode: i.exitCode,
      drift: i.drift,
    }));
    const seen = new Set(listed.map((i) => i.id));
    for (const row of listInstances(this.ctx.store.db, this.service.name, { states: LIVE_STATES })) {
      if (seen.has(row.id) || this.stopping.has(row.id) || row.provider !== this.ctx.provider.name) continue;
      out.push({
        id: row.id,
        release: row.releaseId,
        state: 'missing',
        health: 'missing',
        routed: routed.has(row.id),
        address: row.port ? `127.0.0.1:${row.port}` : '',
        startedAt: Date.parse(row.createdAt),
        exitCode: undefined,
        drift: [`removed outside imago: the ${this.ctx.provider.name} provider no longer has it`],
      });
    }
    return out;
  }

  /** The plan a deploy would follow now (from the instances running). */
  async plan(service: ServiceSpec = this.service): Promise<ReturnType<typeof planRollout>> {
    const running = (await this.ctx.provider.list({ [Label.service]: service.name })).filter((i) => i.state === 'running').length;
    return planRollout(service.strategy.kind, running, limitsFor(service));
  }

  /** Stops the router and the watchers; instances keep running. */
  async close(): Promise<void> {
    for (const watcher of this.watchers.values()) watcher.stop();
    this.watchers.clear();
    await this.router.close();
  }

  /** Stops every instance of a release (a failed first deploy has nothing to go back to). */
  private async retire(releaseId: number): Promise<void> {
    const instances = await this.ctx.provider.list({ [Label.service]: this.service.name, [Label.release]: String(releaseId) });
    await Promise.all(instances.map((instance) => this.stopInstance(instance.id, 'failed')));
  }

  /** Repeats reconcile → act → wait until converged or failed. */
  private async converge(desired: DesiredService, release: Release): Promise<{ failed?: { reason: string; instances: string[]; transcript: unknown }; started: string[] }> {
    const started: string[] = [];
    for (;;) {
      const observed = await this.observe(desired.release);
      const actions = reconcile(desired, observed, Date.now());
      // Read the failed instances' probes and logs before they are stopped and forgotten.
      const transcript = actions.failed ? await this.transcriptOf(actions.failed.instances) : undefined;
      const work: Array<Promise<unknown>> = [];
      for (const id of actions.stop) work.push(this.stopInstance(id, actions.failed?.instances.includes(id) ? 'failed' : 'stopped'));
      // A shift adds the new instances before it takes the old ones away, with nothing awaited
      // in between: the router never has fewer instances than the step allows.
      const targets = await Promise.all(actions.route.map((id) => this.ctx.provider.inspect(id)));
      for (const info of targets) {
        if (!info) continue;
        this.router.route({ id: info.id, host: info.address.host, port: info.address.port });
        this.track(info.id, 'serving');
      }
      for (const id of actions.unroute) {
        this.router.unroute(id);
        this.unroutedAt.set(id, Date.now());
        this.track(id, 'draining');
      }
      for (let i = 0; i < actions.start; i++) work.push(this.startInstance(release).then((id) => started.push(id)));
      // Every start and stop settles before a failure is raised: none goes on unseen behind it.
      const failure = (await Promise.allSettled(work)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failure) throw failure.reason;
      if (actions.failed) return { failed: { ...actions.failed, transcript }, started };
      if (actions.converged) return { started };
      await this.changed();
    }
  }

  /** Instances of this service as reconcile sees them. */
  private async observe(desiredRelease: number): Promise<ObservedInstance[]> {
    const instances = await this.ctx.provider.list({ [Label.service]: this.service.name });
    const routed = new Set(this.router.routed());
    const out: ObservedInstance[] = [];
    for (const instance of instances) {
      if (this.stopping.has(instance.id)) continue;
      const release = Number(instance.labels[Label.release]);
      if (instance.state === 'running' && !this.watchers.has(instance.id)) await this.watch(instance);
      const watcher = this.watchers.get(instance.id);
      const unroutedAt = this.unroutedAt.get(instance.id);
      out.push({
        id: instance.id,
        release: Number.isInteger(release) ? release : undefined,
        state: instance.state,
        health: watcher?.status ?? 'starting',
        routed: routed.has(instance.id),
        ...(unroutedAt !== undefined ? { unroutedAt } : {}),
        inflight: this.router.inflight(instance.id),
        startedAt: instance.startedAt,
      });
    }
    return out;
  }

  private async startInstance(release: Release): Promise<string> {
    const port = await freeLoopbackPort(this.ports);
    this.ports.add(port);
    let instance: ProviderInstance;
    let image: ImageConfig;
    try {
      image = await this.ctx.store.config(release.digest as Digest);
      const imagePort = Object.keys(image.config?.ExposedPorts ?? {}).map((key) => /^(\d+)\/tcp$/.exec(key)?.[1]).find(Boolean);
      const spec = instanceSpecFor(
        this.service,
        { id: release.id, version: release.version, digest: release.digest as Digest },
        { port, env: this.ctx.env, random: randomBytes(3).toString('hex'), imagePort: imagePort ? Number(imagePort) : undefined },
      );
      instance = await this.ctx.provider.create(spec);
    } catch (error) {
      this.ports.delete(port); // nothing listens there: the port is free again
      throw error;
    }
    recordInstance(this.ctx.store.db, { id: instance.id, service: this.service.name, releaseId: release.id, provider: this.ctx.provider.name, port, actor: this.actor });
    await this.watch(instance, image);
    return instance.id;
  }

  /** Starts probing an instance; `image` is its image config when the caller has read it already. */
  private async watch(instance: ProviderInstance, image?: ImageConfig): Promise<void> {
    image ??= await this.ctx.store.config(instance.digest);
    const health: ServiceHealth = healthFor(this.service, image);
    const watcher = new HealthWatcher({ health, address: instance.address, startedAt: instance.startedAt });
    watcher.onChange(() => this.wake?.());
    this.watchers.set(instance.id, watcher);
  }

  private async stopInstance(id: string, final: 'stopped' | 'failed'): Promise<void> {
    if (this.stopping.has(id)) return;
    this.stopping.add(id);
    try {
      if (this.router.routed().includes(id) || this.router.inflight(id) > 0) {
        this.router.unroute(id);
        await this.router.drain(id, this.service.drainTimeout);
      } else {
        await this.router.drain(id, 0);
      }
      this.watchers.get(id)?.stop();
      const info = await this.ctx.provider.inspect(id);
      await this.ctx.provider.destroy(id, { graceMs: this.service.stopGrace });
      if (info) this.ports.delete(info.address.port);
      this.track(id, final);
    } finally {
      this.watchers.delete(id);
      this.unroutedAt.delete(id);
      this.stopping.delete(id);
    }
  }

  /** Records an instance's state when the database knows it (adopted instances may predate it). */
  private track(id: string, state: 'serving' | 'draining' | 'stopped' | 'failed'): void {
    const row = getInstance(this.ctx.store.db, id);
    if (row && row.state !== 'stopped' && row.state !== 'failed') setInstanceState(this.ctx.store.db, id, state, { actor: this.actor });
  }

  /** Resolves on the next health change, or after a short tick (drains and deadlines are time-based). */
  private changed(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, TICK_MS);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }



  private desiredFor(release: Release, deployStartedAt: number | undefined): DesiredService {
    return {
      release: release.id,
      strategy: this.service.strategy.kind,
      limits: limitsFor(this.service),
      deployStartedAt,
      deployTimeout: this.service.deployTimeout,
      drainTimeout: this.service.drainTimeout,
    };
  }

  /** The health transcript and last log lines of the instances a failed deploy blames. */
  private async transcriptOf(ids: string[]): Promise<Record<string, { probes: string[]; log: string[] }>> {
    const out: Record<string, { probes: string[]; log: string[] }> = {};
    for (const id of ids) {
      const logFile = (await this.ctx.provider.inspect(id))?.logFile;
      const log = logFile ? (await readFile(logFile, 'utf8').catch(() => '')).trimEnd().split('\n').slice(-20) : [];
      out[id] = { probes: (this.watchers.get(id)?.transcript ?? []).map((r) => `${new Date(r.at).toISOString()} ${r.ok ? 'ok' : 'FAIL'} ${r.detail}`), log };
    }
    return out;
  }
}

/** The service config a release records: what its instances run with. */
function renderConfig(service: ServiceSpec): Record<string, unknown> {
  return JSON.parse(JSON.stringify(service)) as Record<string, unknown>;
}

/**
 * A service's rollout limits as counts: percentages resolved against the replicas (surge up,
 * unavailability down); blue-green may surge by the whole fleet; at least one of the two is 1.
 */
export function limitsFor(service: ServiceSpec): RolloutLimits {
  const { replicas, strategy } = service;
  if (strategy.kind === 'blue-green') return { replicas, maxSurge: replicas, maxUnavailable: 0 };
  let maxSurge = resolveCount(strategy.maxSurge, replicas, 'up');
  const maxUnavailable = resolveCount(strategy.maxUnavailable, replicas, 'down');
  if (maxSurge + maxUnavailable === 0) maxSurge = 1;
  return { replicas, maxSurge, maxUnavailable };
}

import type { ServiceSpec } from '../config/types.js';
import type { Actions } from '../core/fleet.js';
import { phoenixDueAt } from '../core/phoenix.js';
import { reconcile } from '../core/reconcile.js';
import { DeployError, reasonOf } from '../errors.js';
import type { Prober } from '../health/health-gate.js';
import type { Digest } from '../oci/digest.js';
import type { ImageConfig } from '../oci/types.js';
import type { Provider, ProviderInstance } from '../providers/provider.js';
import type { RouterControl } from '../router/router-control.js';
import { finishDeploy } from '../state/deploys.js';
import { recordDrift } from '../state/drift.js';
import { markHealthy } from '../state/instances.js';
import { getRelease, liveRelease, setReleaseStatus } from '../state/releases.js';
import { getService, setDesired, setListen } from '../state/services.js';
import type { InstanceRow, Release } from '../state/types.js';
import type { Db } from '../store/db.js';
import type { ImageStore } from '../store/image-store.js';
import { systemClock, type Clock } from '../util/clock.js';
import { tailLines } from '../util/tail.js';
import { readDesired, SpecCache, type DesiredState } from './desired-state.js';
import { Executor } from './executor.js';
import { healthFor } from './health-for.js';
import { HealthWatchers } from './health-watchers.js';
import { ImageConfigs } from './image-configs.js';
import { observe, type Observation } from './observe.js';
import type { PortAllocator } from './ports.js';

/** How a deploy ended, as its caller hears it. */
export interface DeployResult {
  release: Release;
  outcome: 'live' | 'failed';
  reason?: string;
  /** Instance ids started for this release while it deployed. */
  started: string[];
}

/** One instance in `imago status`. */
export interface InstanceSnapshot {
  id: string;
  release: number | undefined;
  /** `running` or `exited` (the provider's word), `lost` (gone from the provider, not stopped by imago), or `starting` (being made). */
  state: string;
  /** The health checks' verdict, or `crashed`, `lost`, `unmanaged`. */
  health: string;
  routed: boolean;
  address: string;
  startedAt: number;
  exitCode: number | undefined;
  /** Changes made from outside imago, one line each (empty: as created). */
  drift: string[];
  /** The guard's bucket for it (healthy, starting, draining, drifted, tooOld, unmanaged …). */
  bucket: string;
  /** Why it is leaving, when it is. */
  retiring?: string | undefined;
  /** When phoenix replaces it (ms since the epoch), for a service with a max age. */
  dueAt?: number | undefined;
}

/** A service's state in `imago status`. */
export interface ServiceSnapshot {
  replicas: number;
  release: number | undefined;
  instances: InstanceSnapshot[];
  /** The release keeps failing: why, and when the next start may be. */
  degraded: { reason: string; nextStartAt: number | undefined } | undefined;
  converged: boolean;
  /** The loop's last error (a provider that cannot be reached), if its last round failed. */
  error: string | undefined;
  dataPlane: string;
}

/** What a loop works with. */
export interface LoopContext {
  db: Db;
  store: ImageStore;
  provider: Provider;
  router: RouterControl;
  ports: PortAllocator;
  /** The environment name, for labels. */
  env: string;
  clock?: Clock;
  /** How health probes are made (a fake provider's, in scenario tests). */
  probe?: Prober;
  /** The timer between rounds when nothing else wakes the loop (default 2 s). */
  tickMs?: number;
  /** Image configs, read once (default: this loop's own cache). */
  configs?: ImageConfigs;
}

/** A round's result, as waiters see it. */
export interface Round {
  at: number;
  /** Converged, and nothing is still being stopped. */
  settled: boolean;
  actions: Actions;
  observation: Observation;
  state: DesiredState;
}

const TICK_MS = 2_000;
/** How long closing waits for a round, and for background starts and stops. */
const CLOSE_WAIT_MS = 15_000;

/** Waits for `work`, or `ms`, whichever is first (real time: closing is not a scenario's). */
function within(work: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    void work.then(
      () => (clearTimeout(timer), resolve()),
      () => (clearTimeout(timer), resolve()),
    );
  });
}

/**
 * One service's control loop: observe → reconcile → execute, for as long as the control
 * plane runs. It runs on a timer, on every provider event (an exit, drift), on every health
 * change, when an unrouted instance's last request ends, when background work finishes, and
 * whenever the desired state changes (`wake`). Desired state is read from the stored rows at
 * every round; a deploy writes them and awaits the outcome this loop reports.
 */
export class ServiceLoop {
  readonly watchers: HealthWatchers;
  readonly executor: Executor;
  readonly specs: SpecCache;
  /** The loop's time (the system's, or a scenario test's). */
  readonly clock: Clock;
  private address: { host: string; port: number } | undefined;
  private running: Promise<void> | undefined;
  private closed = false;
  private woken = false;
  private sleeper: (() => void) | undefined;
  private unsubscribe: Array<() => void> = [];
  private actor = 'imago';
  private last: Round | undefined;
  private lastError: string | undefined;
  private readonly waiters = new Set<(round: Round) => void>();
  private readonly configs: ImageConfigs;
  private readonly deployWaiters = new Map<number, (result: DeployResult) => void>();
  /** Deploys that failed, waiting (with patience, in ms) for the fleet to be back on the release before them. */
  private readonly failing = new Map<number, { result: DeployResult; at: number; patience: number }>();

  constructor(
    readonly ctx: LoopContext,
    readonly name: string,
  ) {
    this.clock = ctx.clock ?? systemClock;
    this.specs = new SpecCache(ctx.db);
    this.configs = ctx.configs ?? new ImageConfigs(ctx.store);
    this.watchers = new HealthWatchers({
      clock: this.clock,
      probe: ctx.probe,
      onChange: (id, status, at) => {
        if (status === 'healthy') markHealthy(ctx.db, id, { actor: this.actor, now: new Date(at) });
        this.wake();
      },
    });
    this.executor = new Executor({
      service: name,
      db: ctx.db,
      store: ctx.store,
      provider: ctx.provider,
      router: ctx.router,
      watchers: this.watchers,
      clock: this.clock,
      ports: ctx.ports,
      specs: this.specs,
      env: ctx.env,
      actor: () => this.actor,
      wake: () => this.wake(),
      imageConfig: (digest) => this.imageConfig(digest),
    });
  }

  /** Starts the router (on the service's stored address, or a new one that is then stored) and the loop. */
  async start(): Promise<{ host: string; port: number }> {
    this.address = await this.ctx.router.start();
    const row = getService(this.ctx.db, this.name);
    if (row && (!row.listen || row.listen.port === 0)) setListen(this.ctx.db, this.name, this.address);
    if (this.ctx.provider.watch) this.unsubscribe.push(this.ctx.provider.watch(() => this.wake()));
    this.unsubscribe.push(this.ctx.router.onIdle(() => this.wake()));
    this.running = this.run();
    return this.address;
  }

  /** The router's address. */
  get url(): string {
    return this.address ? `http://${this.address.host.includes(':') ? `[${this.address.host}]` : this.address.host}:${this.address.port}` : '';
  }

  /** Runs a round soon (the desired state changed, or something happened). `actor` is who the next records are for. */
  wake(actor?: string): void {
    if (actor) this.actor = actor;
    this.woken = true;
    this.sleeper?.();
  }

  /** Resolves with the outcome of deploy `deployId` as this loop reports it (a failure once the fleet is back). */
  awaitDeploy(deployId: number): Promise<DeployResult> {
    return new Promise((resolve) => {
      this.deployWaiters.set(deployId, resolve);
      this.wake();
    });
  }

  /**
   * Waits until a round satisfies `check` (the first round from now on), or `timeoutMs`
   * passes: then it rejects naming `what`.
   */
  until(what: string, check: (round: Round) => boolean, timeoutMs: number): Promise<Round> {
    return new Promise((resolve, reject) => {
      let cancel: () => void = () => undefined;
      const waiter = (round: Round) => {
        if (!check(round)) return;
        this.waiters.delete(waiter);
        cancel();
        resolve(round);
      };
      cancel = this.clock.setTimer(() => {
        this.waiters.delete(waiter);
        reject(new DeployError(`${what} did not happen within ${Math.round(timeoutMs / 1000)}s`));
      }, timeoutMs);
      this.waiters.add(waiter);
      this.wake();
    });
  }

  /** The service as the last round saw it. */
  snapshot(): ServiceSnapshot {
    const round = this.last;
    const service = getService(this.ctx.db, this.name);
    const base = { replicas: service?.replicas ?? 0, release: service?.releaseId, dataPlane: this.ctx.router.kind, error: this.lastError };
    if (!round) return { ...base, instances: [], degraded: undefined, converged: false };
    const bucketOf = new Map<string, string>();
    for (const [bucket, ids] of Object.entries(round.actions.buckets)) for (const id of ids) bucketOf.set(id, bucket);
    const routed = new Set(this.ctx.router.routed());
    const phoenix = round.state.desired.guard.phoenix;
    const instances: InstanceSnapshot[] = round.observation.observed.instances.map((i) => {
      const listed = round.observation.listed.get(i.id);
      const row = round.observation.rows.get(i.id);
      const bucket = bucketOf.get(i.id) ?? 'unknown';
      return {
        id: i.id,
        release: i.release,
        state: i.state === 'lost' ? 'lost' : listed ? listed.state : i.startError ? 'exited' : 'starting',
        health: i.release === undefined ? 'unmanaged' : i.state === 'lost' ? 'lost' : i.state === 'exited' ? 'crashed' : (this.watchers.status(i.id) ?? i.health),
        routed: routed.has(i.id),
        address: listed ? `${listed.address.host}:${listed.address.port}` : row?.port ? `127.0.0.1:${row.port}` : '',
        startedAt: i.startedAt,
        exitCode: listed?.exitCode,
        drift: i.state === 'lost' ? ['removed outside imago: the provider no longer has it'] : (i.drift ?? []),
        bucket,
        retiring: round.actions.retiring[i.id],
        dueAt: i.release !== undefined && i.release === round.state.desired.release ? phoenixDueAt(i, phoenix) : undefined,
      };
    });
    return { ...base, instances, degraded: round.actions.degraded, converged: round.settled };
  }

  /**
   * Stops the loop, the watchers and the router; instances keep running. A round or a start
   * or stop still in flight is waited for, at most CLOSE_WAIT_MS each (a provider that never
   * answers must not keep the control plane from stopping).
   */
  async close(): Promise<void> {
    this.closed = true;
    this.sleeper?.();
    for (const off of this.unsubscribe) off();
    this.unsubscribe = [];
    await within(this.running ?? Promise.resolve(), CLOSE_WAIT_MS);
    await within(this.executor.idle(), CLOSE_WAIT_MS);
    this.watchers.stopAll();
    await this.ctx.router.close();
  }

  private async run(): Promise<void> {
    let busy = 0;
    while (!this.closed) {
      this.woken = false;
      let wakeAt: number | undefined;
      let acted = false;
      try {
        ({ wakeAt, acted } = await this.round());
        this.lastError = undefined;
      } catch (error) {
        this.lastError = reasonOf(error);
        this.failRunningDeploy(`the deploy stopped: ${this.lastError}`);
      }
      if (this.closed) break;
      // A round that acted is looked at again at once (what it did may already allow the next
      // step); a bound keeps a round that always acts from spinning.
      busy = acted ? busy + 1 : 0;
      if (acted && busy < 20) continue;
      if (!this.woken) await this.sleep(busy >= 20 ? this.clock.now() + 10 : wakeAt);
      busy = 0;
    }
  }

  /** Sleeps until woken, the tick, or `wakeAt`, whichever comes first. */
  private sleep(wakeAt: number | undefined): Promise<void> {
    const tick = this.ctx.tickMs ?? TICK_MS;
    const ms = Math.max(1, Math.min(tick, wakeAt === undefined ? tick : wakeAt - this.clock.now()));
    return new Promise((resolve) => {
      const cancel = this.clock.setTimer(done, ms);
      const self = this;
      function done() {
        cancel();
        self.sleeper = undefined;
        resolve();
      }
      this.sleeper = done;
    });
  }

  /** One round: observe, reconcile, record what it means, execute. Returns when it wants the next one at the latest. */
  private async round(): Promise<{ wakeAt: number | undefined; acted: boolean }> {
    if (!getService(this.ctx.db, this.name)) return { wakeAt: undefined, acted: false }; // its first deploy has not written it yet
    const state = readDesired(this.ctx.db, this.name, this.specs);
    const observation = await observe(
      {
        service: this.name,
        db: this.ctx.db,
        provider: this.ctx.provider,
        router: this.ctx.router,
        watchers: this.watchers,
        executor: this.executor,
        watch: (instance, row) => this.watch(instance, row),
      },
      state.desired.release,
    );
    const now = this.clock.now();
    const actions = reconcile(state.desired, observation.observed, { now });
    this.recordDrift(observation, state);
    if (state.deploy && actions.deployFailed) {
      // Read the blamed instances' probes and logs before they are stopped and forgotten.
      const transcript = this.transcriptOf(actions.deployFailed.instances, observation.listed);
      this.failDeploy(state, actions.deployFailed.reason, transcript);
    }
    this.executor.apply(actions, state, observation.listed);
    // Settled: converged, and no instance still being stopped in the background.
    const settled = actions.converged && this.executor.stopping.size === 0;
    if (state.deploy && !actions.deployFailed && settled) this.succeedDeploy(state);
    for (const [id, failed] of this.failing) if (settled || now - failed.at > failed.patience) this.finishFailed(id, failed.result);
    const round: Round = { at: now, actions, observation, state, settled };
    this.last = round;
    for (const waiter of [...this.waiters]) waiter(round);
    const acted = actions.start.length + actions.route.length + actions.unroute.length + actions.stop.length + actions.drop.length > 0;
    return { wakeAt: actions.wakeAt, acted };
  }

  /** An image's config, read once per digest (it never changes). */
  imageConfig(digest: Digest): Promise<ImageConfig> {
    return this.configs.get(digest);
  }

  /** Starts probing a running instance of this service (adopted ones too), with its own release's health check. */
  private watch(instance: ProviderInstance, row: InstanceRow): void {
    if (this.watchers.has(instance.id)) return;
    let spec: ServiceSpec;
    try {
      spec = this.specs.of(row.releaseId);
    } catch {
      return; // a release this imago cannot read: its instances are not probed (and so never routed)
    }
    this.ctx.ports.hold(instance.address.port);
    void this.imageConfig(instance.digest as Digest)
      .then((image) => {
        if (!this.closed) this.watchers.ensure(instance.id, healthFor(spec, image), instance.address, instance.startedAt);
        this.wake();
      })
      .catch(() => undefined);
  }

  /** Records each new drift finding (once per instance and line) with what the policy does. */
  private recordDrift(observation: Observation, state: DesiredState): void {
    const action = state.desired.guard.drift;
    for (const instance of observation.observed.instances) {
      if (instance.release === undefined || instance.state !== 'running') continue;
      for (const finding of instance.drift ?? []) {
        recordDrift(this.ctx.db, { service: this.name, instance: instance.id, releaseId: instance.release, finding, action, actor: 'imago' }, new Date(this.clock.now()));
      }
    }
  }

  private succeedDeploy(state: DesiredState): void {
    const { db } = this.ctx;
    const deploy = state.deploy!;
    const now = new Date(this.clock.now());
    const previous = deploy.fromReleaseId !== undefined ? getRelease(db, deploy.fromReleaseId) : undefined;
    const rollback = state.release!.rollbackOf !== undefined;
    if (previous?.status === 'live') setReleaseStatus(db, previous.id, rollback ? 'rolled-back' : 'superseded', undefined, { actor: this.actor, now });
    // Any other release still marked live (an older deploy's, adopted) is superseded too.
    for (let other = liveRelease(db, this.name); other && other.id !== state.release!.id; other = liveRelease(db, this.name)) {
      setReleaseStatus(db, other.id, 'superseded', undefined, { actor: this.actor, now });
    }
    const live = setReleaseStatus(db, state.release!.id, 'live', undefined, { actor: this.actor, now });
    finishDeploy(db, deploy.id, { state: 'succeeded', actor: this.actor }, now);
    this.deployWaiters.get(deploy.id)?.({ release: live, outcome: 'live', started: [...(this.executor.started.get(live.id) ?? [])] });
    this.deployWaiters.delete(deploy.id);
  }

  /** Marks the deploy and its release failed and sets the desired state back to the release before it. */
  private failDeploy(state: DesiredState, reason: string, transcript: unknown): void {
    const { db } = this.ctx;
    const deploy = state.deploy!;
    const now = new Date(this.clock.now());
    const release = setReleaseStatus(db, deploy.releaseId, 'failed', reason, { actor: this.actor, now });
    finishDeploy(db, deploy.id, { state: 'failed', reason, transcript, actor: this.actor }, now);
    const back = deploy.fromReleaseId !== undefined ? getRelease(db, deploy.fromReleaseId) : undefined;
    const previous = back?.status === 'live' ? back : undefined;
    const replicas = previous ? (deploy.fromReplicas ?? this.specs.of(previous.id).replicas) : 0;
    setDesired(db, this.name, { releaseId: previous?.id, replicas, reason: 'deploy failed', actor: this.actor }, now);
    this.failing.set(deploy.id, { result: { release, outcome: 'failed', reason, started: [...(this.executor.started.get(release.id) ?? [])] }, at: now.getTime(), patience: (state.spec?.drainTimeout ?? 30_000) + (state.spec?.stopGrace ?? 10_000) + 30_000 });
    this.wake();
  }

  /** A provider failure during a deploy fails it with the reason (the engine gone, say). */
  private failRunningDeploy(reason: string): void {
    try {
      const state = readDesired(this.ctx.db, this.name, this.specs);
      if (state.deploy) this.failDeploy(state, reason, undefined);
    } catch {
      // no desired state to fail
    }
  }

  private finishFailed(deployId: number, result: DeployResult): void {
    this.failing.delete(deployId);
    this.deployWaiters.get(deployId)?.(result);
    this.deployWaiters.delete(deployId);
  }

  /** The health transcript and last log lines of the instances a failed deploy blames. */
  private transcriptOf(ids: string[], listed: Map<string, ProviderInstance>): Record<string, { probes: string[]; log: string[] }> {
    const out: Record<string, { probes: string[]; log: string[] }> = {};
    for (const id of ids) out[id] = { probes: this.watchers.transcript(id), log: tailLines(listed.get(id)?.logFile ?? '', 20) };
    return out;
  }
}

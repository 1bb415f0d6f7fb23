import type { ServiceSpec } from '../config/types.js';
import type { Actions } from '../core/fleet.js';
import { phoenixDueAt } from '../core/phoenix.js';
import { reconcile } from '../core/reconcile.js';
import { DeployError, reasonOf, RouterError } from '../errors.js';
import type { Prober } from '../health/health-gate.js';
import type { Digest } from '../oci/digest.js';
import type { ImageConfig } from '../oci/types.js';
import { outputTail } from '../providers/output-files.js';
import type { Provider, ProviderInstance } from '../providers/provider.js';
import type { ListenSpec } from '../router/engine/engine.js';
import type { RouterControl } from '../router/router-control.js';
import { finishDeploy, getDeploy } from '../state/deploys.js';
import { recordDrift } from '../state/drift.js';
import { FINAL_INSTANCE_STATES, getInstance, markHealthy } from '../state/instances.js';
import { getRelease, liveRelease, setReleaseStatus } from '../state/releases.js';
import { getService, setDesired, setListen, setServing } from '../state/services.js';
import type { Deploy, InstanceRow, Release } from '../state/types.js';
import type { Db } from '../store/db.js';
import type { ImageStore } from '../store/image-store.js';
import { systemClock, type Clock } from '../util/clock.js';
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
/** When the loop looks again after a provider event (besides at once). */
const EVENT_RECHECK_MS = [100, 500];
/** How often a loop looks while instances drain (their last request's end is not pushed to it). */
const DRAIN_POLL_MS = 100;
/** How long closing waits for a round, and for background starts and stops. */
const CLOSE_WAIT_MS = 15_000;

/**
 * Keeps the process alive until `work` settles. The loop's own timers do not (a control plane
 * must not hold up the exit of a process that is done); someone awaiting a deploy or a round
 * is not done, even when its routers are other processes and nothing else of it is open.
 */
function keepingAlive<T>(work: Promise<T>): Promise<T> {
  const handle = setInterval(() => undefined, 1 << 30);
  return work.finally(() => clearInterval(handle));
}

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
 * change, every 100 ms while an unrouted instance still has requests in flight, when background
 * work finishes, and whenever the desired state changes (`wake`). Desired state is read from the stored rows at
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
  /** Since when reconcile has said converged (undefined: it does not). */
  private convergedAt: number | undefined;
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
    if (this.ctx.provider.watch) this.unsubscribe.push(this.ctx.provider.watch((event) => this.onProviderEvent(event.id)));
    this.running = this.run();
    return this.address;
  }

  /**
   * Instances moved to the desired release (adopted by a rollback inside `keepPrevious`): no
   * longer draining, so the next round routes them as the desired release's healthy ones.
   */
  adopt(ids: string[]): void {
    for (const id of ids) this.executor.unroutedAt.delete(id);
    this.wake();
  }

  /**
   * Moves the service's router to `listen` (a new address, new TLS files), hitless (see
   * RouterControl.relisten), and records where it serves; its routes and instances stay.
   */
  async relisten(listen: ListenSpec, actor: string): Promise<{ host: string; port: number }> {
    const address = await this.ctx.router.relisten(listen);
    this.address = address;
    setServing(this.ctx.db, this.name, { listen: address, tls: listen.tls }, { actor, now: new Date(this.clock.now()) });
    return address;
  }

  /** The router's address. */
  get url(): string {
    if (!this.address) return '';
    const scheme = getService(this.ctx.db, this.name)?.tls ? 'https' : 'http';
    return `${scheme}://${this.address.host.includes(':') ? `[${this.address.host}]` : this.address.host}:${this.address.port}`;
  }

  /** Runs a round soon (the desired state changed, or something happened). */
  wake(): void {
    this.woken = true;
    this.sleeper?.();
  }

  /**
   * Who the loop's records are for while `work` (a deploy, a scale) runs; the guard's own
   * actions, at any other time, are `imago`'s.
   */
  async actingFor<T>(actor: string, work: () => Promise<T>): Promise<T> {
    this.actor = actor;
    try {
      return await work();
    } finally {
      this.actor = 'imago';
    }
  }

  /**
   * A provider event: a round at once, and again a little later — an engine's list of
   * containers can lag its own events (docker sends `die` before its list says exited).
   */
  private onProviderEvent(id: string): void {
    // Another service's instance: not this loop's business (one it does not know yet is found by the tick).
    if (!this.known(id)) return;
    this.wake();
    for (const ms of EVENT_RECHECK_MS) this.clock.setTimer(() => this.wake(), ms);
  }

  /** Whether `id` is an instance this loop saw, or is making or stopping. */
  private known(id: string): boolean {
    return Boolean(this.last?.observation.listed.has(id) || this.executor.creating.has(id) || this.executor.stopping.has(id));
  }

  /** Resolves with the outcome of deploy `deployId` as this loop reports it (a failure once the fleet is back). */
  awaitDeploy(deployId: number): Promise<DeployResult> {
    return keepingAlive(
      new Promise((resolve) => {
        this.deployWaiters.set(deployId, resolve);
        this.wake();
      }),
    );
  }

  /**
   * Waits until a round satisfies `check` (the first round from now on), or `timeoutMs`
   * passes: then it rejects naming `what`.
   */
  until(what: string, check: (round: Round) => boolean, timeoutMs: number): Promise<Round> {
    return keepingAlive(new Promise((resolve, reject) => {
      let cancel: () => void = () => undefined;
      const waiter = (round: Round) => {
        if (!check(round)) return;
        this.waiters.delete(waiter);
        cancel();
        resolve(round);
      };
      cancel = this.clock.setTimer(() => {
        this.waiters.delete(waiter);
        const snapshot = this.snapshot();
        const why = [snapshot.error, snapshot.degraded?.reason, this.executor.stopping.size > 0 ? `${this.executor.stopping.size} instance(s) still stopping` : ''].filter(Boolean);
        reject(new DeployError(`${what} did not happen within ${Math.round(timeoutMs / 1000)}s${why.length ? ` (${why.join('; ')})` : ''}`));
      }, timeoutMs);
      this.waiters.add(waiter);
      this.wake();
    }));
  }

  /** The service as the last round saw it. */
  snapshot(): ServiceSnapshot {
    const round = this.last;
    const service = getService(this.ctx.db, this.name);
    const errors = [this.lastError, ...this.executor.errors.slice(-3)].filter(Boolean);
    const base = { replicas: service?.replicas ?? 0, release: service?.releaseId, dataPlane: this.ctx.router.kind, error: errors.length > 0 ? errors.join('; ') : undefined };
    if (!round) return { ...base, instances: [], degraded: undefined, converged: false };
    const bucketOf = new Map<string, string>();
    for (const [bucket, ids] of Object.entries(round.actions.buckets)) for (const id of ids) bucketOf.set(id, bucket);
    const routed = new Set(round.observation.observed.instances.filter((i) => i.routed).map((i) => i.id));
    for (const id of round.actions.route) routed.add(id);
    for (const id of round.actions.unroute) routed.delete(id);
    for (const order of round.actions.stop) routed.delete(order.id);
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
    this.executor.close();
    await within(this.running ?? Promise.resolve(), CLOSE_WAIT_MS);
    await within(this.executor.idle(), CLOSE_WAIT_MS);
    this.watchers.stopAll();
    // A deploy still waiting is answered: the next control plane aborts it (its release fails, the one before serves).
    for (const [deployId, resolve] of this.deployWaiters) {
      const deploy = getDeploy(this.ctx.db, deployId);
      const release = deploy ? getRelease(this.ctx.db, deploy.releaseId) : undefined;
      if (release) resolve({ release, outcome: 'failed', reason: 'the control plane stopped during this deploy; the next one aborts it', started: [] });
    }
    this.deployWaiters.clear();
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
        // A router that stopped answering (its process died): started again, or adopted if it
        // is back; the next round routes the ready instances to it.
        if (error instanceof RouterError) {
          await this.restartRouter();
          // A router that does not come back must not hold a deploy past its deadline.
          const state = readDesired(this.ctx.db, this.name, this.specs);
          if (state.deploy && this.clock.now() > Date.parse(state.deploy.startedAt) + state.desired.deployTimeout) {
            this.failRunningDeploy(`the deploy stopped: the router did not answer within the deploy's ${Math.round(state.desired.deployTimeout / 1000)}s: ${this.lastError}`);
          }
        } else this.failRunningDeploy(`the deploy stopped: ${this.lastError}`);
        // While rounds fail, a failed deploy's caller is not kept waiting past its patience.
        for (const [id, failed] of this.failing) if (this.clock.now() - failed.at > failed.patience) this.finishFailed(id, failed.result);
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

  /** Starts the router again (or adopts it): its failure is the round's error until it serves. */
  private async restartRouter(): Promise<void> {
    try {
      this.address = await this.ctx.router.start();
    } catch (error) {
      this.lastError = `${this.lastError}; starting the router again failed: ${reasonOf(error)}`;
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
        now: this.clock.now(),
      },
      state.desired.release,
    );
    // The desired state moved while this round observed (a deploy, a rollback adopting kept
    // instances): decide on the new one in the next round, never on a mix of both.
    const now = this.clock.now();
    const actions = reconcile(state.desired, observation.observed, { now });
    // Read the blamed instances' probes and output before they are stopped and forgotten.
    const failure = state.deploy && actions.deployFailed ? await this.failureOf(actions.deployFailed.instances, observation.listed) : undefined;
    const row = getService(this.ctx.db, this.name);
    if (row?.releaseId !== state.service.releaseId || row?.updatedAt !== state.service.updatedAt) return { wakeAt: undefined, acted: true };
    this.recordDrift(observation, state);
    if (state.deploy && actions.deployFailed && failure) {
      const reason = failure.lastLine ? `${actions.deployFailed.reason}; last output: ${failure.lastLine.slice(0, 200)}` : actions.deployFailed.reason;
      this.failDeploy(state, reason, failure.transcript);
    }
    await this.executor.forgetStrays(observation.strays);
    await this.executor.apply(actions, state, observation.listed);
    // Settled: converged, and no instance still being stopped in the background, nor still being
    // made after its stop was ordered (it is destroyed as its create ends) — or the stops
    // outlasting their grace by a margin (a stuck destroy must not hold a deploy's answer forever).
    if (!actions.converged) this.convergedAt = undefined;
    else this.convergedAt ??= now;
    const grace = (state.spec?.stopGrace ?? 10_000) + 10_000;
    const settled = actions.converged && ((this.executor.stopping.size === 0 && this.executor.cancelled.size === 0) || now - this.convergedAt! > grace);
    if (state.deploy && !actions.deployFailed && settled) this.succeedDeploy(state);
    for (const [id, failed] of this.failing) if (settled || now - failed.at > failed.patience) this.finishFailed(id, failed.result);
    const round: Round = { at: now, actions, observation, state, settled };
    this.last = round;
    for (const waiter of [...this.waiters]) waiter(round);
    const acted = actions.start.length + actions.route.length + actions.unroute.length + actions.stop.length + actions.drop.length > 0;
    // A router reports in-flight counts when asked, it pushes nothing: while instances drain, look often.
    const draining = observation.observed.instances.some((i) => actions.buckets.draining.includes(i.id) && (i.inflight ?? 0) > 0);
    const wakeAt = draining ? Math.min(actions.wakeAt ?? Number.POSITIVE_INFINITY, now + DRAIN_POLL_MS) : actions.wakeAt;
    return { wakeAt, acted };
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
        // Still wanted: not closed, not being stopped, not ended meanwhile.
        const now = getInstance(this.ctx.db, instance.id);
        if (this.closed || this.executor.stopping.has(instance.id) || !now || FINAL_INSTANCE_STATES.includes(now.state)) return;
        this.watchers.ensure(instance.id, healthFor(spec, image), instance.address, instance.startedAt);
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

  /** The deploy went live: the release before superseded (or rolled back), this one live, the deploy succeeded — in one transaction. */
  private succeedDeploy(state: DesiredState): void {
    const { db } = this.ctx;
    const deploy = state.deploy!;
    const now = new Date(this.clock.now());
    const live = db.transaction(() => succeed(db, this.name, deploy, state.release!, { actor: this.actor, now }))();
    this.deployWaiters.get(deploy.id)?.({ release: live, outcome: 'live', started: [...(this.executor.started.get(live.id) ?? [])] });
    this.deployWaiters.delete(deploy.id);
  }

  /** Marks the deploy and its release failed and sets the desired state back to the release before it. */
  private failDeploy(state: DesiredState, reason: string, transcript: unknown): void {
    const { db } = this.ctx;
    const deploy = state.deploy!;
    const now = new Date(this.clock.now());
    const release = db.transaction(() => {
      const failed = setReleaseStatus(db, deploy.releaseId, 'failed', reason, { actor: this.actor, now });
      finishDeploy(db, deploy.id, { state: 'failed', reason, transcript, actor: this.actor }, now);
      backToBefore(db, this.name, deploy, this.specs, 'deploy failed', { actor: this.actor, now });
      return failed;
    })();
    this.failing.set(deploy.id, { result: { release, outcome: 'failed', reason, started: [...(this.executor.started.get(release.id) ?? [])] }, at: now.getTime(), patience: (state.spec?.drainTimeout ?? 30_000) + (state.spec?.stopGrace ?? 10_000) + 30_000 });
    this.wake();
  }

  /**
   * A provider failure during a deploy fails it with the reason (the engine gone, say), and
   * answers its caller at once: with the provider down, the fleet cannot be shown back.
   */
  private failRunningDeploy(reason: string): void {
    try {
      const state = readDesired(this.ctx.db, this.name, this.specs);
      if (!state.deploy) return;
      this.failDeploy(state, reason, undefined);
      const failed = this.failing.get(state.deploy.id);
      if (failed) this.finishFailed(state.deploy.id, failed.result);
    } catch {
      // no desired state to fail
    }
  }

  private finishFailed(deployId: number, result: DeployResult): void {
    this.failing.delete(deployId);
    this.deployWaiters.get(deployId)?.(result);
    this.deployWaiters.delete(deployId);
  }

  /**
   * The health transcript and last output lines of each instance a failed deploy blames (as
   * far as their provider has them), and the last line of the first one that exited: usually
   * the error itself.
   */
  private async failureOf(ids: string[], listed: Map<string, ProviderInstance>): Promise<{ transcript: Record<string, { probes: string[]; log: string[] }>; lastLine: string | undefined }> {
    const transcript: Record<string, { probes: string[]; log: string[] }> = {};
    let lastLine: string | undefined;
    for (const id of ids) {
      const log = await outputTail(this.ctx.provider, id, 20);
      transcript[id] = { probes: this.watchers.transcript(id), log };
      if (lastLine === undefined && listed.get(id)?.state === 'exited') lastLine = log.at(-1);
    }
    return { transcript, lastLine };
  }
}

/**
 * Marks a deploy's release live, supersedes (or, for a rollback, rolls back) the release
 * before it and any other still marked live, and finishes the deploy. A release already live
 * (a round that went live, then failed before answering) is left as it is.
 */
export function succeed(db: Db, service: string, deploy: Deploy, release: Release, options: { actor: string; now: Date }): Release {
  const current = getRelease(db, release.id)!;
  if (current.status !== 'live') {
    const rollback = release.rollbackOf !== undefined;
    const previous = deploy.fromReleaseId !== undefined ? getRelease(db, deploy.fromReleaseId) : undefined;
    if (previous?.status === 'live') setReleaseStatus(db, previous.id, rollback ? 'rolled-back' : 'superseded', undefined, options);
    for (let other = liveRelease(db, service); other && other.id !== release.id; other = liveRelease(db, service)) setReleaseStatus(db, other.id, 'superseded', undefined, options);
    setReleaseStatus(db, release.id, 'live', undefined, options);
  }
  if (getDeploy(db, deploy.id)?.state === 'running') finishDeploy(db, deploy.id, { state: 'succeeded', actor: options.actor }, options.now);
  return getRelease(db, release.id)!;
}

/**
 * Sets a service's desired state back to the release its deploy came from (and the replicas it
 * had), or to none on a first deploy: what a failed or aborted deploy leaves serving.
 */
export function backToBefore(db: Db, service: string, deploy: Deploy, specs: SpecCache, reason: string, options: { actor: string; now: Date }): void {
  const back = deploy.fromReleaseId !== undefined ? getRelease(db, deploy.fromReleaseId) : undefined;
  const previous = back?.status === 'live' ? back : undefined;
  const replicas = previous ? (deploy.fromReplicas ?? specOrUndefined(specs, previous.id)?.replicas ?? 0) : 0;
  setDesired(db, service, { releaseId: previous?.id, replicas, reason, actor: options.actor }, options.now);
}

function specOrUndefined(specs: SpecCache, releaseId: number): ServiceSpec | undefined {
  try {
    return specs.of(releaseId);
  } catch {
    return undefined;
  }
}

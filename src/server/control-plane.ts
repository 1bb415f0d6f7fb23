import { hostname } from 'node:os';
import type { ProviderName, ServiceSpec } from '../config/types.js';
import { limitsFor } from '../core/limits.js';
import { planRollout } from '../core/plan.js';
import type { RolloutPlan } from '../core/rollout.js';
import { deployRelease, planFor, scaleTo, type DeployOutcome, type DeployRequest } from '../controller/deploy.js';
import { SpecCache } from '../controller/desired-state.js';
import { ImageConfigs } from '../controller/image-configs.js';
import { LoopbackPorts, type PortAllocator } from '../controller/ports.js';
import { backToBefore, ServiceLoop, succeed, type InstanceSnapshot } from '../controller/service-loop.js';
import { HttpError, ImageError, ImagoError, reasonOf, RouterError } from '../errors.js';
import type { Prober } from '../health/health-gate.js';
import type { Digest } from '../oci/digest.js';
import type { Providers } from '../providers/registry.js';
import type { Provider } from '../providers/provider.js';
import type { RouterControl } from '../router/router-control.js';
import { summariseStats } from '../router/stats-summary.js';
import { readTlsPair } from '../router/tls.js';
import { makeRouter, resolveDataPlane, routerFolder, type DataPlaneChoice, type DataPlaneKind } from '../router/data-plane.js';
import { finishDeploy, runningDeploys } from '../state/deploys.js';
import { listDrift } from '../state/drift.js';
import { LockError } from '../state/errors.js';
import { appendEvent } from '../state/ledger.js';
import { acquireLock, breakLock, readLock, releaseLock, renewLock } from '../state/lock.js';
import { getRelease, lastGoodRelease, listReleases, liveRelease, setReleaseStatus } from '../state/releases.js';
import { ensureService, getService, listServices } from '../state/services.js';
import type { DriftFinding, Release } from '../state/types.js';
import type { ImageStore } from '../store/image-store.js';
import { LogCollection, type LogCollectionOptions } from '../logs/log-collection.js';
import { stateCounts } from '../state/counts.js';
import { renderMetrics, type MetricsInput } from './metrics.js';
import { DEFAULT_LOG_LIMIT, type LogDrops, type LogQuery, type StoredLogLine } from '../logs/log-store.js';
import { systemClock, type Clock } from '../util/clock.js';
import { withDeadline } from '../util/deadline.js';
import { alive } from '../util/pids.js';
import { revocationOf } from '../state/revocations.js';
import { tokenFor, type ApiToken } from '../state/tokens.js';
import { verifyImage } from '../sign/signatures.js';
import type { KeyObject } from 'node:crypto';
import { policyFor, type PolicyText } from './environment-policy.js';
import { getSetting, setSetting } from '../state/settings.js';
import { isEnvironmentName, ENVIRONMENT_NAME, serviceKey, splitServiceKey } from '../config/environments.js';
import { decidePromotion, type PromotionPick } from '../core/promotion.js';

/** How a control plane is put together (tests swap the clock, the probes, the ports and the router). */
export interface ControlPlaneOptions {
  /**
   * The home environment (default `default`): its services keep their bare names, and a
   * request that names no environment goes to it. Fixed for a state folder.
   */
  env?: string;
  clock?: Clock;
  probe?: Prober;
  ports?: PortAllocator;
  /** Which data plane serves the services (default `auto`: the best one installed). */
  dataPlane?: DataPlaneChoice;
  /** Makes a service's router instead (scenario tests' fake). */
  router?: (service: string, listen: { host: string; port: number }) => RouterControl;
  /** The loops' timer between rounds (default 2 s). */
  tickMs?: number;
  /** How the central log store is kept (retention, the collector's bounds). */
  logs?: LogCollectionOptions;
}

/** What `imago drill` reports. */
export interface DrillResult {
  service: string;
  killed: string[];
  /** From the kills until the service was back at full healthy capacity (ms). */
  recoveredMs: number;
  /** Requests the router saw meanwhile, those that failed, and those it sent to another instance. */
  requests: number;
  failedRequests: number;
  retriedRequests: number;
}

/** How long a scrape waits for a provider's CPU and memory readings. */
const USAGE_DEADLINE_MS = 3_000;

/** The setting that records a state folder's home environment. */
const HOME_ENVIRONMENT = 'home-environment';

/** The one control plane of a state folder: its lock's name. */
const PLANE_LOCK = 'control-plane';
const PLANE_LOCK_TTL_MS = 30_000;

/**
 * The control plane: the one writer of state. It owns a ServiceLoop per service (each with
 * its router), adopts what runs at start, and serves deploys, rollbacks, scaling, drills,
 * plans, status, drift and history. Every change writes desired state and wakes the loop.
 */
export class ControlPlane {
  private readonly loops = new Map<string, ServiceLoop>();
  /** Loops being started, by service. */
  private readonly starting = new Map<string, Promise<ServiceLoop>>();
  /** Services that could not be adopted at start (their provider unreachable, say), with the reason. */
  readonly unavailable = new Map<string, string>();
  private readonly env: string;
  private readonly clock: Clock;
  private readonly ports: PortAllocator;
  /** The data plane new routers run on. */
  readonly dataPlane: DataPlaneKind;
  private readonly lockOwner = `imago-server:${hostname()}:${process.pid}`;
  private lockRenewal: NodeJS.Timeout | undefined;
  /** Image configs by digest, read once for every loop. */
  readonly configs: ImageConfigs;
  /** What every instance printed, collected into `<home>/logs.db` (opened at start). */
  private logs: LogCollection | undefined;
  private readonly outputProviders = new Map<ProviderName, Promise<Provider>>();

  constructor(
    private readonly store: ImageStore,
    private readonly providers: Providers,
    private readonly options: ControlPlaneOptions | string = {},
  ) {
    const o = this.opts;
    this.env = o.env ?? 'default';
    this.clock = o.clock ?? systemClock;
    this.ports = o.ports ?? new LoopbackPorts();
    this.dataPlane = resolveDataPlane(o.dataPlane ?? 'auto');
    this.configs = new ImageConfigs(store);
  }

  private get opts(): ControlPlaneOptions {
    return typeof this.options === 'string' ? { env: this.options } : this.options;
  }

  /**
   * Starts after a stop or a crash: takes the state folder's control-plane lock (one control
   * plane per folder), aborts a deploy the last one left running (its release failed with the
   * reason, the desired state back on the release before it), then runs a loop for every
   * service, which adopts its running instances and converges them to the desired state.
   */
  async start(): Promise<void> {
    this.takePlaneLock();
    const db = this.store.db;
    const refusal = this.checkHomeEnvironment();
    if (refusal) {
      clearInterval(this.lockRenewal);
      releaseLock(db, PLANE_LOCK, this.lockOwner);
      throw new ImagoError(refusal);
    }
    this.logs = new LogCollection(this.store.home, db, (name) => this.outputProvider(name as ProviderName), (service) => this.envOf(service), this.opts.logs);
    this.logs.start();
    const specs = new SpecCache(db);
    for (const deploy of runningDeploys(db)) {
      breakLock(db, `service:${deploy.service}`);
      const release = getRelease(db, deploy.releaseId);
      const now = new Date(this.clock.now());
      db.transaction(() => {
        if (release?.status === 'live') {
          // It went live and the last control plane died before it answered: it succeeded.
          succeed(db, deploy.service, deploy, release, { actor: 'imago', now });
          return;
        }
        const reason = 'the control plane stopped during this deploy; it was aborted on restart';
        finishDeploy(db, deploy.id, { state: 'aborted', reason, actor: 'imago' }, now);
        if (release && (release.status === 'deploying' || release.status === 'pending')) setReleaseStatus(db, release.id, 'failed', reason, { actor: 'imago', now });
        if (getService(db, deploy.service)) backToBefore(db, deploy.service, deploy, specs, 'deploy aborted', { actor: 'imago', now });
      })();
    }
    for (const service of listServices(db)) {
      // One service whose provider cannot be reached (dockerd down) must not keep the others down.
      try {
        await this.startLoop(service.name, service.provider as ProviderName, { address: service.listen, protocol: service.protocol, tls: service.tls });
      } catch (error) {
        this.unavailable.set(service.name, reasonOf(error));
      }
    }
  }

  /**
   * Why this control plane may not start with its home environment, if it may not. A state
   * folder's home environment is recorded at its first start under this version (taken from
   * its services when it has some from before: those without '@' were all made in it) and
   * never changes, since every key without '@' means it.
   */
  private checkHomeEnvironment(): string | undefined {
    const db = this.store.db;
    const recorded = getSetting(db, HOME_ENVIRONMENT);
    const says = (env: string, why: string) => `the state folder '${this.store.home}' has the home environment '${env}' (${why}), not '${this.env}': start imago server with --env ${env}`;
    if (recorded !== undefined) return recorded === this.env ? undefined : says(recorded, 'recorded at its first start');
    const services = listServices(db);
    const bare = [...new Set(services.filter((s) => !s.name.includes('@')).map((s) => s.env))];
    if (bare.length > 0 && !bare.includes(this.env)) return says(bare[0]!, `service '${services.find((s) => !s.name.includes('@'))!.name}' runs there`);
    const clash = services.find((s) => s.name.endsWith(`@${this.env}`));
    if (clash) return `the state folder '${this.store.home}' already runs '${clash.name}': '${this.env}' cannot become its home environment, whose services have bare names`;
    setSetting(db, HOME_ENVIRONMENT, this.env, 'imago');
    return undefined;
  }

  /**
   * The key of service `name` in environment `env` (undefined: the home environment): what
   * every other method takes as the service (see src/config/environments.ts).
   */
  keyOf(name: string, env: string | undefined): string {
    if (env !== undefined && env !== this.env && !isEnvironmentName(env)) throw new HttpError(400, `expected "env": ${ENVIRONMENT_NAME}, got ${JSON.stringify(env)}`);
    return serviceKey(name, env ?? this.env, this.env);
  }

  /** The environment a service key is in. */
  envOf(key: string): string {
    return splitServiceKey(key, this.env).env;
  }

  /** Deploys `image` (a reference, resolved to a digest once, here) as `service` (its name: a service key). */
  async deploy(service: ServiceSpec, image: string, actor: string, options: { force?: boolean; policy?: PolicyText | undefined; admin?: boolean } = {}): Promise<DeployOutcome> {
    const digest = this.resolve(image);
    const { keys } = policyFor(this.store.db, this.envOf(service.name), options.policy, { admin: options.admin ?? true, actor });
    return this.deployDigest(service, digest, actor, { what: `deploy ${service.name}`, keys, ...(options.force ? { force: true } : {}) });
  }

  /**
   * Deploys `digest` as `service` once the checks every way in shares pass: not revoked
   * (`what`: the refusal's words), no environment-variable secret on docker, and signed by
   * one of `keys` when its environment's policy requires it.
   */
  private async deployDigest(service: ServiceSpec, digest: Digest, actor: string, options: { what: string; keys: KeyObject[] | undefined; force?: boolean; promotion?: DeployRequest['promotion'] }): Promise<DeployOutcome> {
    this.refuseRevoked(digest, options.what);
    const asEnv = service.provider === 'docker' ? service.secrets.find((s) => 'env' in s) : undefined;
    if (asEnv) throw new HttpError(400, `services.${service.name}.secrets.${asEnv.name}: the docker provider gives secrets as files only (docker inspect shows a container's environment): use { file: /run/secrets/${asEnv.name} }`);
    if (options.keys) await this.refuseUnsigned(digest, service.name, options.keys);
    const loop = await this.loopFor(service, actor);
    return deployRelease(loop, { spec: service, digest, actor, ...(options.force ? { force: true } : {}), ...(options.promotion ? { promotion: options.promotion } : {}) });
  }

  /**
   * Promotes service `name` from environment `from` to `to`: deploys to `to` (as `service`,
   * the service as `to` runs it) exactly the digest of the release `pick` names in `from`
   * (default: its live one). Refused (409) when that release never passed its health gate in
   * `from`, was rolled back there, or was live there for less than `minSoak`, unless `force`
   * with a `reason`, which the ledger records; a revoked digest is refused always.
   */
  async promote(request: { name: string; from: string; to: string; service: ServiceSpec; pick: PromotionPick; force: boolean; reason?: string | undefined; policy?: PolicyText | undefined }, actor: string, admin = true): Promise<DeployOutcome & { promotedFrom: { env: string; service: string; version: number } }> {
    const { name, from, to } = request;
    if (from === to) throw new HttpError(400, `promote: "from" and "to" are both '${from}': name two environments`);
    if (request.force && !request.reason?.trim()) throw new HttpError(400, 'promote: --force needs --reason "…": the ledger records why a promotion went past its checks');
    const source = this.keyOf(name, from);
    const target = this.keyOf(name, to);
    if (request.service.name !== target) throw new HttpError(400, `promote: the service sent is '${request.service.name}', expected '${target}'`);
    const releases = listReleases(this.store.db, source);
    if (releases.length === 0) throw new HttpError(404, `service '${name}' was never deployed to ${from} (no releases of '${source}')`);
    const { minSoak, keys } = policyFor(this.store.db, to, request.policy, { admin, actor });
    const decision = decidePromotion({ source: `'${name}' in ${from}`, releases, pick: request.pick, now: this.clock.now(), minSoak, force: request.force });
    if (!decision.ok) {
      if (!decision.forceable) throw new HttpError(404, `cannot promote: ${decision.reason}`);
      throw new HttpError(409, `cannot promote '${name}' to ${to}: ${decision.reason} (--force --reason "…" promotes it anyway, and the ledger says why)`);
    }
    const promotedFrom = { env: from, service: source, version: decision.release.version };
    // Resolved in this store: a digest gc took since is a 404 naming it, as a deploy's would be.
    const outcome = await this.deployDigest(request.service, this.resolve(decision.release.digest), actor, {
      what: `promote ${source} release ${decision.release.version} to ${to}`,
      keys,
      promotion: { from: promotedFrom, overridden: decision.overridden, reason: request.reason },
    });
    return { ...outcome, promotedFrom };
  }

  /** Rolls a service back: to release version `to`, or to the last good release before the live one. */
  async rollback(service: string, to: number | undefined, actor: string): Promise<DeployOutcome> {
    const live = liveRelease(this.store.db, service);
    const releases = listReleases(this.store.db, service);
    if (releases.length === 0) throw new HttpError(404, `service '${service}' has no releases`);
    let target: Release | undefined;
    if (to !== undefined) {
      target = releases.find((r) => r.version === to);
      if (!target) throw new HttpError(404, `service '${service}' has no release ${to} (it has ${releases.map((r) => r.version).join(', ')})`);
      if (target.status === 'failed') throw new HttpError(400, `release ${to} of '${service}' failed; roll back to one that ran`);
    } else {
      target = lastGoodRelease(this.store.db, service, live?.id);
      if (!target) throw new HttpError(409, `service '${service}' has no earlier good release to roll back to`);
    }
    this.refuseRevoked(target.digest, `roll ${service} back to release ${target.version}`);
    // The environment's stored policy holds for a rollback too: it sends no config of its own.
    const { keys } = policyFor(this.store.db, this.envOf(service), undefined, { admin: false, actor });
    if (keys) await this.refuseUnsigned(target.digest as Digest, service, keys);
    const spec = new SpecCache(this.store.db).of(target.id);
    // Where the service listens is the service's, not the release's: a rollback does not move its router.
    const loop = this.loops.get(service) ?? (await this.loopFor(spec, actor, { relisten: false }));
    return deployRelease(loop, { spec, digest: target.digest as Digest, actor, rollbackOf: target.id, ...(target.secrets ? { secretVersions: target.secrets.versions } : {}) });
  }

  /**
   * A service's stored log lines that match `query`, oldest first, with the id to ask after
   * for what comes next (a follower), and the lines its instances printed that were dropped.
   */
  async logsOf(query: LogQuery): Promise<{ lines: StoredLogLine[]; lastId: number; drops: LogDrops[] }> {
    if (!this.logs) throw new ImagoError('the control plane has not started');
    if (!getService(this.store.db, query.service)) throw new HttpError(404, `no service '${query.service}' (imago status lists them)`);
    await this.logs.passSoon(); // what was printed up to now, not up to the last pass
    const lines = this.logs.store.query(query);
    // Every line stored up to now was looked at, unless the limit cut the answer short.
    const cut = query.tail === undefined && lines.length >= (query.limit ?? DEFAULT_LOG_LIMIT);
    const lastId = cut ? lines.at(-1)!.id : Math.max(this.logs.store.lastId(), query.afterId ?? 0);
    return { lines, lastId, drops: this.logs.store.drops(query.service) };
  }

  /** One scrape of `/metrics`: counts from the state database and the log store, and each router's. */
  async metrics(): Promise<{ contentType: string; text: string }> {
    const db = this.store.db;
    const routers: MetricsInput['routers'] = [];
    for (const [service, loop] of this.loops) {
      // A router that does not answer is left out of this scrape (its counts come back with it).
      const stats = await loop.ctx.router.stats().then(summariseStats, () => undefined);
      if (!stats) continue;
      routers.push({ service, kind: loop.ctx.router.kind.split(' ')[0]!, requests: stats.requests, failed: stats.failed, retried: stats.retried, releases: this.byVersion(stats.releases) });
    }
    const usage: NonNullable<MetricsInput['usage']> = [];
    for (const [service, loop] of this.loops) {
      const running = loop.snapshot().instances.filter((i) => i.state === 'running');
      const provider = loop.ctx.provider;
      if (!provider.usage || running.length === 0) continue;
      // An engine slow to answer costs this scrape its usage, never the scrape.
      const read = await withDeadline(provider.usage(running.map((i) => i.id)), USAGE_DEADLINE_MS, `the ${provider.name} provider did not read CPU and memory`).catch(() => undefined);
      for (const i of running) {
        const u = read?.get(i.id);
        if (u) usage.push({ service, instance: i.id, release: String(this.versionOf(i.release) ?? '-'), ...u });
      }
    }
    const drops = new Map<string, number>();
    for (const d of this.logs?.store.drops() ?? []) drops.set(d.service, (drops.get(d.service) ?? 0) + d.lines);
    return renderMetrics({
      state: stateCounts(db),
      logs: { stored: this.logs?.store.linesStored() ?? [], dropped: [...drops].map(([service, lines]) => ({ service, lines })) },
      forwarder: this.logs?.forwarder?.state,
      usage,
      routers,
    });
  }

  /** Sets a service's replicas (no release, no rollout) and waits until that many are healthy. */
  async scale(service: string, replicas: number, actor: string): Promise<{ service: string; from: number; to: number; ms: number }> {
    const loop = this.loopOf(service);
    const started = this.clock.now();
    const { from, to } = await scaleTo(loop, replicas, actor);
    return { service, from, to, ms: this.clock.now() - started };
  }

  /**
   * A fire drill: kills `kill` instances of the service (all with 'all') as a crash or a host
   * reboot would, then reports how long until it was back at full healthy capacity and what
   * the router saw meanwhile. Recorded in the ledger.
   */
  async drill(service: string, kill: number | 'all', actor: string): Promise<DrillResult> {
    const loop = this.loopOf(service);
    const { db } = this.store;
    const snapshot = loop.snapshot();
    const desired = getService(db, service)?.releaseId;
    const candidates = snapshot.instances.filter((i) => i.release === desired && i.state === 'running').map((i) => i.id);
    const count = kill === 'all' ? candidates.length : kill;
    if (candidates.length === 0) throw new HttpError(409, `service '${service}' has no running instance to kill`);
    if (count > candidates.length) throw new HttpError(400, `--kill: expected at most ${candidates.length} (the instances running), got ${count}`);
    const targets = shuffle(candidates).slice(0, count).sort();
    appendEvent(db, { actor, kind: 'drill.started', service, data: { kill: targets } });
    const before = await loop.ctx.router.stats();
    const started = this.clock.now();
    await Promise.all(targets.map((id) => loop.ctx.provider.kill(id)));
    loop.wake();
    const timeout = (desired ? loop.specs.of(desired).deployTimeout : 120_000) + 30_000;
    const round = await loop.until(`service '${service}' back at full healthy capacity`, (r) => r.settled && !r.observation.observed.instances.some((i) => targets.includes(i.id)), timeout);
    const after = await loop.ctx.router.stats();
    const result: DrillResult = {
      service,
      killed: targets,
      recoveredMs: round.at - started,
      requests: after.requests - before.requests,
      failedRequests: after.failed - before.failed,
      retriedRequests: after.retried - before.retried,
    };
    appendEvent(db, { actor, kind: 'drill.finished', service, data: { ...result } });
    return result;
  }

  /** The plan a deploy of `service` would follow now. */
  async plan(service: ServiceSpec, image: string): Promise<{ digest: Digest; plan: RolloutPlan }> {
    const digest = this.resolve(image);
    const loop = this.loops.get(service.name);
    return { digest, plan: loop ? planFor(loop, service) : planRollout(service.strategy.kind, 0, limitsFor(service.strategy, service.replicas)) };
  }

  /** Every service: its router, desired and live release, health verdict and instances. */
  async status(): Promise<Array<Record<string, unknown>>> {
    const out: Array<Record<string, unknown>> = [];
    for (const [service, error] of this.unavailable) if (!this.loops.has(service)) out.push({ service, ...splitServiceKey(service, this.env), error, instances: [] });
    // Whether a release's digest is revoked, looked up once per release, not once per instance.
    const revoked = new Map<number, string | null>();
    const revokedOf = (releaseId: number | undefined): string | null => {
      if (releaseId === undefined) return null;
      if (!revoked.has(releaseId)) revoked.set(releaseId, this.revokedText(getRelease(this.store.db, releaseId)?.digest) ?? null);
      return revoked.get(releaseId)!;
    };
    for (const [name, loop] of this.loops) {
      const live = liveRelease(this.store.db, name);
      const row = getService(this.store.db, name)!;
      const snapshot = loop.snapshot();
      const desired = row.releaseId !== undefined ? getRelease(this.store.db, row.releaseId) : undefined;
      const router = loop.ctx.router;
      // A router that does not answer is the status's news, not its failure.
      const traffic = await router.stats().then(summariseStats, (error: unknown) => ({ error: reasonOf(error) }));
      if ('releases' in traffic) traffic.releases = this.byVersion(traffic.releases);
      out.push({
        service: name,
        name: splitServiceKey(name, this.env).name,
        env: row.env,
        url: loop.url,
        provider: row.provider,
        dataPlane: snapshot.dataPlane,
        router: { kind: router.kind, pid: router.pid ?? null },
        traffic,
        live: live ? { version: live.version, digest: live.digest, since: live.finishedAt, revoked: this.revokedText(live.digest) ?? null } : null,
        desired: { release: desired ? desired.version : null, replicas: row.replicas },
        degraded: snapshot.degraded ?? null,
        converged: snapshot.converged,
        ...(snapshot.error ? { error: snapshot.error } : {}),
        // An instance of a revoked digest runs on until replaced; status says so.
        instances: snapshot.instances.map((i) => ({ ...i, release: this.versionOf(i.release), revoked: revokedOf(i.release) })) as InstanceSnapshot[],
      });
    }
    return out;
  }

  /**
   * An image its environment's policy does not trust is a 409 saying why: it has no
   * signature, none by one of `keys`, or one by a trusted key that was changed. `--force` sets
   * none of this aside.
   */
  private async refuseUnsigned(digest: Digest, service: string, keys: KeyObject[]): Promise<void> {
    const verified = await verifyImage(this.store, digest, keys);
    if (!verified.ok) throw new HttpError(409, `cannot deploy ${service}: its environment requires a signature by one of ${keys.length} key(s), and ${verified.message}`);
  }

  /** A digest that may not be deployed is a 409 saying who revoked it, when and why. */
  private refuseRevoked(digest: string, what: string): void {
    const revoked = revocationOf(this.store.db, digest);
    if (revoked) throw new HttpError(409, `cannot ${what}: image ${digest} was revoked by ${revoked.revokedBy} at ${revoked.revokedAt}: ${revoked.reason}`);
  }

  /** Why `digest` was revoked (`<reason> (by <actor>)`), when it was. */
  private revokedText(digest: string | undefined): string | undefined {
    const revoked = digest ? revocationOf(this.store.db, digest) : undefined;
    return revoked ? `${revoked.reason} (by ${revoked.revokedBy})` : undefined;
  }

  /** A release's version, as users name releases (its id when the row is gone; undefined for none). */
  private versionOf(releaseId: number | undefined): number | undefined {
    return releaseId === undefined ? undefined : (getRelease(this.store.db, releaseId)?.version ?? releaseId);
  }

  /** Counts keyed by release id (or `none`) keyed by version instead. */
  private byVersion<T>(byId: Record<string, T>): Record<string, T> {
    return Object.fromEntries(Object.entries(byId).map(([id, t]) => [id === 'none' ? id : String(this.versionOf(Number(id))), t]));
  }

  /** Drift findings, oldest first (one service's, or all), at most `limit`. */
  drift(service?: string, limit = 500): DriftFinding[] {
    return listDrift(this.store.db, { ...(service ? { service } : {}), limit });
  }

  /** A service's releases, newest first. */
  history(service: string): Release[] {
    return listReleases(this.store.db, service);
  }

  /**
   * Stops every loop, lets go of the routers, the providers and the lock. Instances keep
   * running, and so do routers that are processes of their own (the next control plane adopts
   * them), unless `stopRouters`: then the services stop answering.
   */
  async close(options: { stopRouters?: boolean } = {}): Promise<void> {
    for (const loop of this.loops.values()) {
      await loop.close();
      if (options.stopRouters) await loop.ctx.router.stop();
    }
    this.loops.clear();
    await this.providers.close();
    // After the providers: the docker provider's followers have copied the engine's last lines.
    await this.logs?.close();
    this.logs = undefined;
    clearInterval(this.lockRenewal);
    try {
      releaseLock(this.store.db, PLANE_LOCK, this.lockOwner);
    } catch {
      // another process took it after ours ran out: nothing of ours to release
    }
  }

  /**
   * The provider the log collection reads a service's output through: kept once made, so the
   * last passes at close (after the providers were closed, their last lines copied) read
   * through the same objects rather than making new ones.
   */
  private outputProvider(name: ProviderName): Promise<Provider> {
    let provider = this.outputProviders.get(name);
    if (!provider) {
      provider = this.providers.get(name);
      this.outputProviders.set(name, provider);
      provider.catch(() => this.outputProviders.delete(name));
    }
    return provider;
  }

  /** Takes the state folder's control-plane lock, from a dead holder on this host too. */
  private takePlaneLock(): void {
    const db = this.store.db;
    try {
      acquireLock(db, PLANE_LOCK, this.lockOwner, PLANE_LOCK_TTL_MS);
    } catch (error) {
      if (!(error instanceof LockError)) throw error;
      const held = readLock(db, PLANE_LOCK);
      const [, host, pid] = /^imago-server:(.*):(\d+)$/.exec(held?.owner ?? '') ?? [];
      if (held && host === hostname() && pid && !alive(Number(pid))) {
        breakLock(db, PLANE_LOCK);
        acquireLock(db, PLANE_LOCK, this.lockOwner, PLANE_LOCK_TTL_MS);
      } else {
        throw new ImagoError(`another imago control plane runs for the state folder '${this.store.home}' (${held?.owner ?? 'unknown'}): stop it first, or use another --home`, { cause: error });
      }
    }
    this.lockRenewal = setInterval(() => {
      try {
        renewLock(db, PLANE_LOCK, this.lockOwner, PLANE_LOCK_TTL_MS);
      } catch {
        // taken over: the next start of a loop or deploy goes on; a second plane refuses to start while ours renews
      }
    }, PLANE_LOCK_TTL_MS / 3);
    this.lockRenewal.unref();
  }

  private loopOf(service: string): ServiceLoop {
    const loop = this.loops.get(service);
    if (loop) return loop;
    if (this.unavailable.has(service)) throw new HttpError(503, `service '${service}' is unavailable: ${this.unavailable.get(service)}`);
    throw new HttpError(404, `service '${service}' is not deployed here (deploy it first)`);
  }

  /** The loop of a service, started (and its desired state recorded) on its first deploy; its provider and router address are checked. */
  private async loopFor(service: ServiceSpec, actor: string, options: { relisten?: boolean } = {}): Promise<ServiceLoop> {
    const db = this.store.db;
    const row = getService(db, service.name);
    if (row && row.provider !== service.provider) {
      throw new HttpError(409, `service '${service.name}' runs on the ${row.provider} provider, and a deploy cannot move it to ${service.provider}: deploy it under a new name, then scale '${service.name}' to 0 replicas`);
    }
    if (row && row.protocol !== service.protocol) {
      throw new HttpError(409, `service '${service.name}' is served as ${row.protocol}, and a deploy cannot change its router to ${service.protocol}: deploy it under a new name`);
    }
    const tls = service.listen?.tls;
    // Bad certificate files are the deploy's mistake: said now, before anything starts.
    if (tls) {
      try {
        readTlsPair(service.name, tls);
      } catch (error) {
        if (error instanceof RouterError) throw new HttpError(400, `services.${service.name}.listen.tls: ${error.message}`, { cause: error });
        throw error;
      }
    }
    let loop = this.loops.get(service.name);
    if (!loop) {
      // Two first deploys at once share one start: one loop per service, ever.
      let starting = this.starting.get(service.name);
      if (!starting) {
        const address = row?.listen ?? (service.listen ? { host: service.listen.host, port: service.listen.port } : undefined);
        starting = this.startLoop(service.name, service.provider, { address, protocol: service.protocol, tls }).finally(() => this.starting.delete(service.name));
        this.starting.set(service.name, starting);
      }
      loop = await starting;
    }
    const current = getService(db, service.name);
    if (!current) {
      const address = new URL(loop.url);
      ensureService(db, { name: service.name, env: this.envOf(service.name), provider: service.provider, replicas: 0, listen: { host: address.hostname.replace(/^\[|\]$/g, ''), port: Number(address.port) }, protocol: service.protocol, tls, actor });
    } else if (current.listen && options.relisten !== false) {
      await this.relisten(loop, { listen: current.listen, tls: current.tls }, service, actor);
    }
    return loop;
  }

  /**
   * A deploy that names a new listen address or TLS files, or any deploy of a service served
   * with TLS (its files' contents may have been renewed), moves the router there first,
   * hitless: nothing changes when the router already serves exactly that. An address in use
   * is a 409, bad TLS files a 400, and the deploy goes no further.
   */
  private async relisten(loop: ServiceLoop, serving: { listen: { host: string; port: number }; tls: { cert: string; key: string } | undefined }, service: ServiceSpec, actor: string): Promise<void> {
    const was = serving.listen;
    const tls = service.listen?.tls;
    // Port 0 asks for any port: the one it has, at the same host.
    const address = service.listen ? { host: service.listen.host, port: service.listen.port === 0 && service.listen.host === was.host ? was.port : service.listen.port } : was;
    const moved = address.host !== was.host || address.port !== was.port;
    if (!moved && !tls && !serving.tls) return;
    try {
      await loop.relisten({ ...address, protocol: service.protocol, ...(tls ? { tls } : {}) }, actor);
    } catch (error) {
      if (error instanceof RouterError && error.inUse) throw new HttpError(409, `service '${service.name}' cannot move its router to ${address.host}:${address.port}: ${error.message}`, { cause: error });
      if (error instanceof RouterError && error.badInput) throw new HttpError(400, `services.${service.name}.listen: ${error.message}`, { cause: error });
      throw error;
    }
  }

  private async startLoop(name: string, providerName: ProviderName, serve: { address: { host: string; port: number } | undefined; protocol: 'http' | 'tcp'; tls: { cert: string; key: string } | undefined }): Promise<ServiceLoop> {
    const provider = await this.providers.get(providerName);
    const o = this.opts;
    const address = serve.address ?? { host: '127.0.0.1', port: 0 };
    const listen = { ...address, protocol: serve.protocol, ...(serve.tls ? { tls: serve.tls } : {}) };
    const router = o.router ? o.router(name, address) : makeRouter(this.dataPlane, name, listen, routerFolder(this.store.home, name));
    const loop = new ServiceLoop({ db: this.store.db, store: this.store, provider, router, ports: this.ports, env: this.envOf(name), clock: this.clock, configs: this.configs, ...(o.probe ? { probe: o.probe } : {}), ...(o.tickMs ? { tickMs: o.tickMs } : {}) }, name);
    try {
      await loop.start();
    } catch (error) {
      await loop.close().catch(() => undefined); // its router must not hold the service's address
      throw error;
    }
    this.unavailable.delete(name);
    this.loops.set(name, loop);
    return loop;
  }

  /** The live named token a presented secret is (see src/state/tokens.ts), or undefined. */
  tokenFor(presented: string): ApiToken | undefined {
    return presented ? tokenFor(this.store.db, presented) : undefined;
  }

  /** An image reference resolved to its digest (404 for none, 400 for a bad reference). */
  resolveImage(image: string): Digest {
    return this.resolve(image);
  }

  private resolve(image: string): Digest {
    try {
      return this.store.resolve(image);
    } catch (error) {
      if (error instanceof ImageError) throw new HttpError(error.notFound ? 404 : 400, error.message, { cause: error });
      throw error;
    }
  }
}

/** A shuffled copy. */
function shuffle<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

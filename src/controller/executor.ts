import { randomBytes } from 'node:crypto';
import type { Actions, StartOrder, StopOrder } from '../core/fleet.js';
import { reasonOf } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import type { ImageConfig } from '../oci/types.js';
import { newInstanceId, type Provider, type ProviderInstance } from '../providers/provider.js';
import type { RouterControl } from '../router/router-control.js';
import { dropAwaiting, endInstance, getInstance, setOutput, setPort, INSTANCE_STATES, recordInstance, setInstanceState, FINAL_INSTANCE_STATES } from '../state/instances.js';
import type { InstanceState } from '../state/types.js';
import type { Db } from '../store/db.js';
import type { ImageStore } from '../store/image-store.js';
import type { Clock } from '../util/clock.js';
import { outputTail } from '../providers/output-files.js';
import type { DesiredState, SpecCache } from './desired-state.js';
import { healthFor } from './health-for.js';
import type { HealthWatchers } from './health-watchers.js';
import { instanceSpecFor } from './instance-spec.js';
import { secretsFor } from './instance-secrets.js';
import type { PortAllocator } from './ports.js';

/** What the executor works with. */
export interface ExecutorContext {
  service: string;
  db: Db;
  store: ImageStore;
  provider: Provider;
  router: RouterControl;
  watchers: HealthWatchers;
  clock: Clock;
  ports: PortAllocator;
  specs: SpecCache;
  /** The environment name, for labels. */
  env: string;
  /** Who the control plane acts for now (the ledger's actor). */
  actor: () => string;
  /** Called when background work finished: the loop looks again. */
  wake: () => void;
  /** An image's config (read once per digest). */
  imageConfig: (digest: Digest) => Promise<ImageConfig>;
}

/**
 * Carries out reconcile's Actions through the provider, the router and the state database,
 * and holds no policy. Routing and every record happen at once; starts and stops run in the
 * background (a stop may wait out a grace period) and are tracked, so the loop sees them as
 * starting or gone and decides on, never waiting.
 */
export class Executor {
  /** Instances being created: id → their release, when the start began, their lineage's failures. */
  readonly creating = new Map<string, { releaseId: number; startedAt: number; attempt: number }>();
  /** Starts that failed, shown to reconcile once as exited instances (it decides what that means). */
  readonly startErrors = new Map<string, { releaseId: number; error: string; at: number; attempt: number }>();
  /** Instances being stopped and destroyed. */
  readonly stopping = new Set<string>();
  /** When imago unrouted each draining instance. */
  readonly unroutedAt = new Map<string, number>();
  /** Instance ids started, by release id. */
  readonly started = new Map<number, string[]>();
  /** Failures of background work (a destroy that failed), for status; the loop retries. */
  readonly errors: string[] = [];
  private readonly work = new Set<Promise<void>>();
  /** Instances told to stop while their create was still in flight: they go as soon as it ends. */
  readonly cancelled = new Set<string>();
  /** Destroys that failed, by instance: how often, and when to try again. */
  private readonly stopFailures = new Map<string, { count: number; nextAt: number }>();
  private closed = false;

  constructor(private readonly ctx: ExecutorContext) {}

  /**
   * Carries out `actions`: stops first (their records before any start takes their place),
   * then routing, then starts. The router is told before each record moves on: a router that
   * fails leaves the records as they were, and the next round tries again.
   */
  async apply(actions: Actions, state: DesiredState, listed: Map<string, ProviderInstance>): Promise<void> {
    const now = new Date(this.ctx.clock.now());
    for (const order of actions.stop) await this.stop(order, now);
    if (actions.drop.length > 0) dropAwaiting(this.ctx.db, actions.drop);
    for (const id of actions.route) {
      const instance = listed.get(id);
      if (!instance) continue;
      await this.ctx.router.route({ id, host: instance.address.host, port: instance.address.port, release: getInstance(this.ctx.db, id)?.releaseId });
      this.unroutedAt.delete(id);
      this.advance(id, 'serving', now);
    }
    for (const id of actions.unroute) {
      await this.ctx.router.unroute(id);
      this.unroutedAt.set(id, now.getTime());
      this.advance(id, 'draining', now);
    }
    for (const order of actions.start) this.start(order, state);
  }

  /** Takes targets out of the router that are no instance of this service any more (the router kept them while no control plane ran). */
  async forgetStrays(ids: string[]): Promise<void> {
    for (const id of ids) await this.ctx.router.forget(id);
  }

  /** Resolves once no start or stop is in flight. */
  async idle(): Promise<void> {
    while (this.work.size > 0) await Promise.allSettled([...this.work]);
  }

  private track(work: Promise<void>): void {
    this.work.add(work);
    void work.finally(() => {
      this.work.delete(work);
      this.ctx.wake();
    });
  }

  /**
   * Records the end, takes it out of the router and its watcher, then destroys it in the
   * background. One still being created is destroyed as soon as its create ends; a destroy
   * that failed is tried again later (1 s, doubling to a minute), never in a spin.
   */
  private async stop(order: StopOrder, now: Date): Promise<void> {
    const { id } = order;
    if (this.stopping.has(id)) return;
    const retry = this.stopFailures.get(id);
    if (retry && now.getTime() < retry.nextAt) return;
    // Out of the router first: no request goes to an instance imago has ended.
    await this.ctx.router.forget(id);
    const row = getInstance(this.ctx.db, id);
    if (row) {
      endInstance(this.ctx.db, id, { state: order.outcome, reason: order.reason, ...(order.failure ? { streak: order.failure.streak, awaiting: order.failure.awaiting } : {}), actor: this.ctx.actor(), now });
    }
    this.ctx.watchers.stop(id);
    this.unroutedAt.delete(id);
    // Being made: its own start destroys it and frees its port once the create ends.
    if (this.creating.has(id)) {
      this.cancelled.add(id);
      return;
    }
    // A start that failed holds no port (its start freed it) and nothing to destroy; a lost one neither.
    if (this.startErrors.delete(id)) return;
    if (order.outcome === 'lost') {
      if (row?.port) this.ctx.ports.release(row.port);
      return;
    }
    this.stopping.add(id);
    const graceMs = row ? this.graceOf(row.releaseId) : 10_000;
    const failed = order.outcome !== 'stopped';
    this.track(
      this.ctx.provider
        .destroy(id, { graceMs })
        .then(async () => {
          this.stopFailures.delete(id);
          if (row?.port) this.ctx.ports.release(row.port);
          // A failure's last output lines, now that its output is complete: what `imago status` shows first.
          if (failed && row) setOutput(this.ctx.db, id, (await outputTail(this.ctx.provider, id, 3)).map((line) => line.slice(0, 200)));
        })
        .catch((error: unknown) => {
          const count = (this.stopFailures.get(id)?.count ?? 0) + 1;
          this.stopFailures.set(id, { count, nextAt: this.ctx.clock.now() + Math.min(60_000, 1000 * 2 ** (count - 1)) });
          this.errors.push(`failed to stop instance '${id}' (try ${count}, again in ${Math.min(60, 2 ** (count - 1))}s): ${reasonOf(error)}`);
          if (this.errors.length > 20) this.errors.shift();
        })
        .finally(() => this.stopping.delete(id)),
    );
  }

  /**
   * Records and creates one instance of the desired release in the background. The record
   * comes first: a start that fails at any step is a failure on file (its lineage backs off).
   */
  private start(order: StartOrder, state: DesiredState): void {
    const { release, spec } = state;
    if (!release || !spec) return;
    const id = newInstanceId(this.ctx.service, release.version, randomBytes(3).toString('hex'));
    const startedAt = this.ctx.clock.now();
    this.creating.set(id, { releaseId: release.id, startedAt, attempt: order.attempt });
    recordInstance(
      this.ctx.db,
      { id, service: this.ctx.service, releaseId: release.id, provider: this.ctx.provider.name, attempt: order.attempt, ...(order.replaces ? { replaces: order.replaces } : {}), actor: this.ctx.actor() },
      new Date(startedAt),
    );
    this.track(
      (async () => {
        let port: number | undefined;
        try {
          port = await this.ctx.ports.allocate();
          setPort(this.ctx.db, id, port);
          const image = await this.ctx.imageConfig(release.digest as Digest);
          const exposed = Object.keys(image.config?.ExposedPorts ?? {}).map((key) => /^(\d+)\/tcp$/.exec(key)?.[1]).find(Boolean);
          const secrets = secretsFor(this.ctx.db, this.ctx.store.home, spec, release);
          const instance = await this.ctx.provider.create(instanceSpecFor(spec, { id: release.id, digest: release.digest as Digest }, { id, port, env: this.ctx.env, imagePort: exposed ? Number(exposed) : undefined, secrets }));
          if (this.cancelled.has(id) || this.closed) {
            // Stopped while it was being made (its deploy failed), or the loop closed: it goes at once.
            await this.ctx.provider.destroy(id, { graceMs: spec.stopGrace });
            endInstance(this.ctx.db, id, { state: 'stopped', reason: 'stopped while it started', actor: this.ctx.actor(), now: new Date(this.ctx.clock.now()) });
            this.ctx.ports.release(port);
            return;
          }
          this.ctx.watchers.ensure(id, healthFor(spec, image), instance.address, instance.startedAt);
          const list = this.started.get(release.id) ?? [];
          list.push(id);
          this.started.set(release.id, list);
        } catch (error) {
          if (port !== undefined) this.ctx.ports.release(port);
          if (this.cancelled.has(id)) endInstance(this.ctx.db, id, { state: 'stopped', reason: 'stopped while it started', actor: this.ctx.actor() });
          else this.startErrors.set(id, { releaseId: release.id, error: reasonOf(error), at: this.ctx.clock.now(), attempt: order.attempt });
        } finally {
          this.cancelled.delete(id);
          this.creating.delete(id);
        }
      })(),
    );
  }

  /** No start ends in a new watcher after this (the loop closed); instances made meanwhile go. */
  close(): void {
    this.closed = true;
  }

  private graceOf(releaseId: number): number {
    try {
      return this.ctx.specs.of(releaseId).stopGrace;
    } catch {
      return 10_000;
    }
  }

  /** Moves an instance's record forward to `state`; a record already past it (or ended) stays. */
  private advance(id: string, state: InstanceState, now: Date): void {
    const row = getInstance(this.ctx.db, id);
    if (!row || FINAL_INSTANCE_STATES.includes(row.state) || INSTANCE_STATES.indexOf(row.state) >= INSTANCE_STATES.indexOf(state)) return;
    setInstanceState(this.ctx.db, id, state, { actor: this.ctx.actor(), now });
  }
}

import type { ServiceSpec } from '../config/types.js';
import { ServiceController, type DeployResult } from '../controller/service-controller.js';
import { HttpError, ImageError, reasonOf } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import { Label } from '../providers/provider.js';
import type { Providers } from '../providers/registry.js';
import { finishDeploy, runningDeploys } from '../state/deploys.js';
import { getInstance, setInstanceState } from '../state/instances.js';
import { breakLock } from '../state/lock.js';
import { getRelease, lastGoodRelease, listReleases, liveRelease, setReleaseStatus } from '../state/releases.js';
import type { Release } from '../state/types.js';
import type { ImageStore } from '../store/image-store.js';

/**
 * The control plane: the one writer of state. It owns a ServiceController per service,
 * adopts what runs at start (from each live release's recorded config), and serves deploys,
 * rollbacks, plans, status and history.
 */
export class ControlPlane {
  private readonly controllers = new Map<string, ServiceController>();
  /** Services that could not be adopted at start (their provider unreachable, say), with the reason. */
  readonly unavailable = new Map<string, string>();

  constructor(
    private readonly store: ImageStore,
    private readonly providers: Providers,
    private readonly env = 'default',
  ) {}

  /**
   * Starts after a stop or a crash: a deploy that was running when the last control plane died
   * is aborted (its release marked failed, with the reason), then every service with a live
   * release is adopted — its router comes back, its instances are found, and the fleet
   * converges to the live release (instances of the aborted one are retired). Instances of an
   * aborted first deploy (no live release to go back to) are destroyed.
   */
  async start(): Promise<void> {
    const db = this.store.db;
    for (const deploy of runningDeploys(db)) {
      const reason = 'the control plane stopped during this deploy; it was aborted on restart';
      finishDeploy(db, deploy.id, { state: 'aborted', reason, actor: 'imago' });
      breakLock(db, `service:${deploy.service}`);
      const release = getRelease(db, deploy.releaseId);
      if (release && (release.status === 'deploying' || release.status === 'pending')) setReleaseStatus(db, release.id, 'failed', reason, { actor: 'imago' });
      if (!liveRelease(db, deploy.service)) {
        try {
          const provider = await this.providers.get((release?.config as Partial<ServiceSpec> | undefined)?.provider);
          for (const instance of await provider.list({ [Label.service]: deploy.service })) {
            await provider.destroy(instance.id, { graceMs: 2_000 });
            const row = getInstance(db, instance.id);
            if (row && row.state !== 'stopped' && row.state !== 'failed') setInstanceState(db, instance.id, 'stopped', { reason, actor: 'imago' });
          }
        } catch (error) {
          this.unavailable.set(deploy.service, `its aborted deploy's instances could not be stopped: ${reasonOf(error)}`);
        }
      }
    }
    const services = this.store.db.prepare(`SELECT DISTINCT service FROM releases WHERE status = 'live'`).all() as { service: string }[];
    for (const { service } of services) {
      const live = liveRelease(this.store.db, service);
      if (!live) continue;
      // One service whose provider cannot be reached (dockerd down) must not keep the others down.
      try {
        await this.controllerFor(live.config as unknown as ServiceSpec, 'imago');
      } catch (error) {
        this.unavailable.set(service, reasonOf(error));
      }
    }
  }

  /** Deploys `image` (a reference, resolved to a digest once, here) as `service`. */
  async deploy(service: ServiceSpec, image: string, actor: string): Promise<DeployResult> {
    const digest = this.resolve(image);
    const controller = await this.controllerFor(service, actor);
    this.checkProvider(controller, service);
    return controller.deploy(digest, { service, actor });
  }

  /** Rolls a service back: to release version `to`, or to the last good release before the live one. */
  async rollback(service: string, to: number | undefined, actor: string): Promise<DeployResult> {
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
    const spec = target.config as unknown as ServiceSpec;
    const controller = await this.controllerFor(spec, actor);
    this.checkProvider(controller, spec);
    return controller.deploy(target.digest as Digest, { rollbackOf: target.id, service: spec, actor });
  }

  /** The plan a deploy of `service` would follow now. */
  async plan(service: ServiceSpec, image: string): Promise<{ digest: Digest; plan: Awaited<ReturnType<ServiceController['plan']>> }> {
    const digest = this.resolve(image);
    const controller = this.controllers.get(service.name);
    if (controller) return { digest, plan: await controller.plan(service) };
    const fresh = new ServiceController({ store: this.store, provider: await this.providers.get(service.provider), actor: 'plan', env: this.env }, service);
    return { digest, plan: await fresh.plan(service) };
  }

  /** Every service: its router address, live release and instances. */
  async status(): Promise<Array<Record<string, unknown>>> {
    const out: Array<Record<string, unknown>> = [];
    for (const [service, error] of this.unavailable) if (!this.controllers.has(service)) out.push({ service, error, instances: [] });
    for (const [name, controller] of this.controllers) {
      const live = liveRelease(this.store.db, name);
      out.push({
        service: name,
        url: controller.url,
        live: live ? { version: live.version, digest: live.digest, since: live.finishedAt } : null,
        provider: controller.spec.provider ?? 'process',
        instances: await controller.snapshot(),
      });
    }
    return out;
  }

  /** A service's releases, newest first. */
  history(service: string): Release[] {
    return listReleases(this.store.db, service);
  }

  /** Stops every router and watcher, and lets go of the providers; instances keep running. */
  async close(): Promise<void> {
    for (const controller of this.controllers.values()) await controller.close();
    this.controllers.clear();
    await this.providers.close();
  }

  /** A service stays on the provider it runs on: moving it would leave its old fleet unseen. */
  private checkProvider(controller: ServiceController, service: ServiceSpec): void {
    const running = controller.spec.provider ?? 'process';
    const wanted = service.provider ?? 'process';
    if (running !== wanted) {
      throw new HttpError(409, `service '${service.name}' runs on the ${running} provider, and a deploy cannot move it to ${wanted}: deploy it under a new name, then scale '${service.name}' to 0 replicas`);
    }
  }

  private resolve(image: string): Digest {
    try {
      return this.store.resolve(image);
    } catch (error) {
      if (error instanceof ImageError) throw new HttpError(error.notFound ? 404 : 400, error.message, { cause: error });
      throw error;
    }
  }

  private async controllerFor(service: ServiceSpec, actor: string): Promise<ServiceController> {
    const existing = this.controllers.get(service.name);
    if (existing) return existing;
    const controller = new ServiceController({ store: this.store, provider: await this.providers.get(service.provider), actor, env: this.env }, service);
    try {
      await controller.start();
    } catch (error) {
      await controller.close(); // its router must not hold the service's address
      throw error;
    }
    this.unavailable.delete(service.name);
    this.controllers.set(service.name, controller);
    return controller;
  }
}

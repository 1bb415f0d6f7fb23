import { storeServiceSpec } from '../config/stored-spec.js';
import type { ServiceSpec } from '../config/types.js';
import { limitsFor } from '../core/limits.js';
import { planRollout } from '../core/plan.js';
import type { RolloutPlan } from '../core/rollout.js';
import { HttpError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import { canonicalJson } from '../state/canonical-json.js';
import { createDeploy } from '../state/deploys.js';
import { adoptInstances, FINAL_INSTANCE_STATES, listInstances } from '../state/instances.js';
import { createRelease, getRelease, liveRelease, setReleaseStatus } from '../state/releases.js';
import { appendEvent } from '../state/ledger.js';
import { secretsKey } from '../secrets/seal.js';
import { currentVersions, secretValue } from '../state/secrets.js';
import { getService, scaleService, setDesired } from '../state/services.js';
import type { PromotedFrom } from '../state/types.js';

import { readDesired } from './desired-state.js';
import type { DeployResult, ServiceLoop } from './service-loop.js';
import { withLock } from './with-lock.js';

/** What a deploy asks for. */
export interface DeployRequest {
  spec: ServiceSpec;
  digest: Digest;
  actor: string;
  /** The release whose content this one brings back (a rollback). */
  rollbackOf?: number;
  /** A new release even when nothing changed (every instance replaced). */
  force?: boolean;
  /** The secret versions to run with (a rollback: the ones its target ran with); absent: the environment's newest. */
  secretVersions?: Record<string, number>;
  /** A promotion: the release of another environment this one deploys, the refusals forced past, and why. */
  promotion?: { from: PromotedFrom; overridden: string[]; reason?: string | undefined };
}

/** How a deploy ended: a new release live or failed, nothing to do, or a scale without a release. */
export interface DeployOutcome extends Omit<DeployResult, 'outcome'> {
  outcome: 'live' | 'failed' | 'unchanged' | 'scaled';
  scaled?: { from: number; to: number };
}

/**
 * Deploys a service, as a script, inside its lock (a second change at once gets 409):
 * 1. load the image into the provider;
 * 2. nothing changed: nothing to do; only `replicas` changed: a scale, no release;
 * 3. write the release (the normalised spec, with its schema version) and the deploy with its plan;
 * 4. set the service's desired state to it — the loop rolls it out;
 * 5. await the outcome the loop reports: live, or failed with the reason once the fleet is
 *    back on the release before (whose instances were never touched).
 */
export async function deployRelease(loop: ServiceLoop, request: DeployRequest): Promise<DeployOutcome> {
  const { db, provider } = loop.ctx;
  const { spec, digest, actor } = request;
  return withLock(db, `service:${spec.name}`, actor, () => loop.actingFor(actor, async () => {
    // The secret versions it runs with, each still kept: a release is its image, its config and these.
    const env = loop.ctx.env;
    const names = (spec.secrets ?? []).map((s) => s.name);
    const versions = request.secretVersions ? Object.fromEntries(names.map((n) => [n, request.secretVersions![n]!])) : currentVersions(db, env, names);
    const key = names.length > 0 ? secretsKey(loop.ctx.store.home) : undefined;
    for (const name of names) {
      if (versions[name] === undefined) throw new HttpError(409, `release to bring back records no version of secret "${name}" of ${env}`);
      secretValue(db, key!, env, name, versions[name]!); // one removed or pruned is refused now, before anything starts
    }
    await provider.loadImage(digest);
    const service = getService(db, spec.name)!;
    const live = liveRelease(db, spec.name);
    const sameSecrets = canonicalJson(live?.secrets?.versions ?? {}) === canonicalJson(versions);
    if (live && !request.force && request.rollbackOf === undefined && live.digest === digest && sameSecrets && sameButReplicas(loop.specs.of(live.id), spec)) {
      if (service.replicas === spec.replicas) return { release: live, outcome: 'unchanged', started: [] };
      const scaled = await scale(loop, spec.replicas, actor);
      return { release: live, outcome: 'scaled', scaled, started: [] };
    }
    const now = new Date(loop.clock.now());
    // A rollback keeps the fleet's size (scaling is an operator's, not a release's); a deploy brings its own.
    const replicas = request.rollbackOf !== undefined ? service.replicas : spec.replicas;
    const kept = keptInstances(loop, digest, spec, versions, now.getTime());
    const { promotion } = request;
    const release = createRelease(db, { service: spec.name, digest, config: storeServiceSpec(spec), createdBy: actor, ...(request.rollbackOf ? { rollbackOf: request.rollbackOf } : {}), ...(promotion ? { promotedFrom: promotion.from } : {}), ...(names.length > 0 ? { secrets: { env, versions } } : {}) }, now);
    if (promotion) {
      const data = { version: release.version, digest, from: promotion.from, ...(promotion.overridden.length > 0 ? { forced: promotion.overridden, reason: promotion.reason } : {}) };
      appendEvent(db, { actor, kind: 'release.promoted', service: spec.name, releaseId: release.id, data }, now);
    }
    // The previous release's instances, kept up by `keepPrevious`, are this one's already (the
    // same image and config): they serve again as soon as the loop routes them, a traffic flip.
    if (kept.length > 0) loop.adopt(adoptInstances(db, kept, release.id, { actor, now }));
    const plan = planFor(loop, spec, replicas);
    const deploy = createDeploy(db, { service: spec.name, releaseId: release.id, ...(live ? { fromReleaseId: live.id } : {}), plan, actor, fromReplicas: service.replicas }, now);
    setReleaseStatus(db, release.id, 'deploying', undefined, { actor, now });
    setDesired(db, spec.name, { releaseId: release.id, replicas, reason: request.rollbackOf !== undefined ? 'rollback' : 'deploy', actor }, now);
    loop.wake();
    return loop.awaitDeploy(deploy.id);
  }));
}

/** Changes a service's replicas without a release or a rollout, and waits until that many are healthy and routed (or `timeoutMs`). */
export async function scaleTo(loop: ServiceLoop, replicas: number, actor: string): Promise<{ from: number; to: number }> {
  return withLock(loop.ctx.db, `service:${loop.name}`, actor, () => loop.actingFor(actor, () => scale(loop, replicas, actor)));
}

async function scale(loop: ServiceLoop, replicas: number, actor: string): Promise<{ from: number; to: number }> {
  const { db } = loop.ctx;
  const service = getService(db, loop.name);
  if (!service?.releaseId) throw new HttpError(409, `service '${loop.name}' has no release to scale: deploy it first`);
  const from = service.replicas;
  scaleService(db, loop.name, replicas, actor, new Date(loop.clock.now()));
  loop.wake();
  const timeout = loop.specs.of(service.releaseId).deployTimeout;
  await loop.until(`service '${loop.name}' at ${replicas} healthy instance(s)`, (round) => round.state.service.replicas === replicas && round.settled, timeout);
  return { from, to: replicas };
}

/** The plan a deploy of `spec` would follow now, from the instances running. */
export function planFor(loop: ServiceLoop, spec: ServiceSpec, replicas = spec.replicas): RolloutPlan {
  const snapshot = loop.snapshot();
  const running = snapshot.instances.filter((i) => i.release !== undefined && i.state === 'running').length;
  return planRollout(spec.strategy.kind, running, limitsFor(spec.strategy, replicas));
}

/**
 * The running instances `keepPrevious` keeps that are of the same image, config and secret versions as `spec`
 * (a rollback to the release before, inside its window); none otherwise.
 */
function keptInstances(loop: ServiceLoop, digest: Digest, spec: ServiceSpec, versions: Record<string, number>, now: number): string[] {
  const { db } = loop.ctx;
  const keep = readDesired(db, loop.name, loop.specs).desired.keep;
  if (!keep || now >= keep.until) return [];
  const release = getRelease(db, keep.release);
  if (!release || release.digest !== digest || !sameButReplicas(loop.specs.of(release.id), spec) || canonicalJson(release.secrets?.versions ?? {}) !== canonicalJson(versions)) return [];
  // Only the healthy ones: one failing its checks would fail the rollback it was kept for.
  const healthy = new Set(loop.snapshot().instances.filter((i) => i.health === 'healthy').map((i) => i.id));
  return listInstances(db, loop.name, { releaseId: release.id }).filter((i) => !FINAL_INSTANCE_STATES.includes(i.state) && healthy.has(i.id)).map((i) => i.id);
}

/** Two specs that differ at most in their replicas: a change of size, not of what runs. */
function sameButReplicas(a: ServiceSpec, b: ServiceSpec): boolean {
  return canonicalJson({ ...a, replicas: 0, listen: null }) === canonicalJson({ ...b, replicas: 0, listen: null });
}


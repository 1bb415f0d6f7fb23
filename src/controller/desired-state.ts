import { DEFAULTS } from '../config/normalise.js';
import { readServiceSpec } from '../config/stored-spec.js';
import type { ServiceSpec } from '../config/types.js';
import type { DesiredService } from '../core/fleet.js';
import { limitsFor } from '../core/limits.js';
import { DeployError } from '../errors.js';
import { runningDeploy } from '../state/deploys.js';
import { getRelease, lastGoodRelease, liveRelease } from '../state/releases.js';
import { getService } from '../state/services.js';
import type { Deploy, Release, ServiceRow } from '../state/types.js';
import type { Db } from '../store/db.js';

/** A service's desired state as stored, with what reconcile needs from it. */
export interface DesiredState {
  service: ServiceRow;
  /** The release that should serve, and its spec. */
  release: Release | undefined;
  spec: ServiceSpec | undefined;
  /** A deploy of that release in progress. */
  deploy: Deploy | undefined;
  desired: DesiredService;
}

/** Reads release specs once each: a release never changes. */
export class SpecCache {
  private readonly specs = new Map<number, ServiceSpec>();

  constructor(private readonly db: Db) {}

  /** The spec of a release, checked against its schema (a ConfigError naming the release when it does not fit). */
  of(releaseId: number): ServiceSpec {
    let spec = this.specs.get(releaseId);
    if (!spec) {
      const release = getRelease(this.db, releaseId);
      if (!release) throw new DeployError(`release id ${releaseId} not found`);
      spec = readServiceSpec(release.config, `release ${release.version} of '${release.service}'`);
      this.specs.set(releaseId, spec);
    }
    return spec;
  }
}

/**
 * What a service should be, read from its stored rows — the services row, its desired
 * release and that release's deploy if one runs — never from a field a request could change.
 */
export function readDesired(db: Db, name: string, specs: SpecCache): DesiredState {
  const service = getService(db, name);
  if (!service) throw new DeployError(`service '${name}' has no desired state`);
  const release = service.releaseId === undefined ? undefined : getRelease(db, service.releaseId);
  const spec = release ? specs.of(release.id) : undefined;
  const running = runningDeploy(db, name);
  const deploy = running && running.releaseId === release?.id ? running : undefined;
  const d = DEFAULTS.service;
  const strategy = spec?.strategy ?? { ...d.strategy };
  const keep = release && spec && spec.keepPrevious > 0 ? keptRelease(db, release, spec.keepPrevious, deploy !== undefined) : undefined;
  return {
    service,
    release,
    spec,
    deploy,
    desired: {
      release: release?.id,
      strategy: strategy.kind,
      limits: limitsFor(strategy, service.replicas),
      rollout: deploy ? { startedAt: Date.parse(deploy.startedAt) } : undefined,
      deployTimeout: spec?.deployTimeout ?? d.deployTimeout,
      drainTimeout: spec?.drainTimeout ?? d.drainTimeout,
      guard: {
        phoenix: { maxAge: spec?.maxAge, jitter: spec?.maxAgeJitter ?? d.maxAgeJitter },
        drift: spec?.drift ?? d.drift,
        backoff: spec?.backoff ?? { ...d.backoff },
        gateTimeout: spec?.deployTimeout ?? d.deployTimeout,
      },
      keep,
    },
  };
}

/**
 * The release whose instances `keepPrevious` keeps: while a deploy of `release` runs, the one
 * live now (kept for as long as the deploy takes); once `release` is live, the last good one
 * before it, until `keepPrevious` after `release` went live.
 */
function keptRelease(db: Db, release: Release, keepPrevious: number, deploying: boolean): { release: number; until: number } | undefined {
  if (deploying) {
    const live = liveRelease(db, release.service);
    return live && live.id !== release.id ? { release: live.id, until: Number.POSITIVE_INFINITY } : undefined;
  }
  if (release.status !== 'live' || !release.finishedAt) return undefined;
  const before = lastGoodRelease(db, release.service, release.id);
  return before ? { release: before.id, until: Date.parse(release.finishedAt) + keepPrevious } : undefined;
}

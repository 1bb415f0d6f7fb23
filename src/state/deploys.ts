import { ConfigError } from '../errors.js';
import type { Db } from '../store/db.js';
import { canonicalJson } from './canonical-json.js';
import { checkId, checkOneOf, checkText, orUndefined } from './check.js';
import { LockError } from './errors.js';
import { appendEvent } from './ledger.js';
import { getRelease } from './releases.js';
import type { Deploy, DeployState } from './types.js';

/** The states a deploy ends in. */
export const FINAL_DEPLOY_STATES: readonly Exclude<DeployState, 'running'>[] = ['succeeded', 'failed', 'aborted'];

/** A deploy about to begin. */
export interface NewDeploy {
  service: string;
  releaseId: number;
  /** The release serving now, if any. */
  fromReleaseId?: number;
  /** The plan it will follow (JSON). */
  plan: unknown;
  actor?: string;
  /** The replicas the service had before (what a failed deploy goes back to). */
  fromReplicas?: number;
}

/** How a deploy ended. */
export interface DeployOutcome {
  state: Exclude<DeployState, 'running'>;
  reason?: string;
  /** Health probe transcript and last log lines (JSON). */
  transcript?: unknown;
  actor?: string;
}

interface Row {
  id: number;
  service: string;
  release_id: number;
  from_release_id: number | null;
  plan: string;
  state: DeployState;
  started_at: string;
  finished_at: string | null;
  reason: string | null;
  transcript: string | null;
  from_replicas: number | null;
}

/** Records a running deploy of a release with its plan and appends `deploy.started`; a LockError when the service already has one running. */
export function createDeploy(db: Db, input: NewDeploy, now: Date = new Date()): Deploy {
  const service = checkText('service', input.service);
  const releaseId = checkId('releaseId', input.releaseId);
  const fromReleaseId = input.fromReleaseId === undefined ? null : checkId('fromReleaseId', input.fromReleaseId);
  if (input.plan === undefined) throw new ConfigError('plan: expected a JSON value, got nothing');
  const plan = canonicalJson(input.plan, 'plan');
  return db
    .transaction((): Deploy => {
      for (const [field, id] of [['releaseId', releaseId], ['fromReleaseId', fromReleaseId]] as const) {
        if (id === null) continue;
        const release = getRelease(db, id);
        if (!release || release.service !== service) throw new ConfigError(`${field}: expected a release of service '${service}', got ${id}`);
      }
      const running = db.prepare(`SELECT id, started_at FROM deploys WHERE service = ? AND state = 'running'`).get(service) as { id: number; started_at: string } | undefined;
      if (running) throw new LockError(`service '${service}' already has a deploy running (#${running.id}, started ${running.started_at}): wait for it or abort it`, { lock: `deploy:${service}` });
      const { lastInsertRowid } = db
        .prepare(`INSERT INTO deploys (service, release_id, from_release_id, plan, state, started_at, from_replicas) VALUES (?, ?, ?, ?, 'running', ?, ?)`)
        .run(service, releaseId, fromReleaseId, plan, now.toISOString(), input.fromReplicas ?? null);
      const id = Number(lastInsertRowid);
      const data: Record<string, unknown> = { deploy: id };
      if (fromReleaseId !== null) data.fromReleaseId = fromReleaseId;
      appendEvent(db, { actor: input.actor ?? 'imago', kind: 'deploy.started', service, releaseId, data }, now);
      return getDeploy(db, id)!;
    })
    .immediate();
}

/** Ends a running deploy with its state, reason and transcript and appends `deploy.<state>`; a ConfigError if it is not running. */
export function finishDeploy(db: Db, id: number, outcome: DeployOutcome, now: Date = new Date()): Deploy {
  checkId('deploy id', id);
  const state = checkOneOf('state', outcome.state, FINAL_DEPLOY_STATES);
  const transcript = outcome.transcript === undefined ? null : canonicalJson(outcome.transcript, 'transcript');
  return db
    .transaction((): Deploy => {
      const deploy = getDeploy(db, id);
      if (!deploy) throw new ConfigError(`deploy ${id} not found`);
      if (deploy.state !== 'running') throw new ConfigError(`deploy ${id} of '${deploy.service}' already ended: ${deploy.state}`);
      db.prepare(`UPDATE deploys SET state = ?, reason = ?, transcript = ?, finished_at = ? WHERE id = ?`).run(state, outcome.reason ?? null, transcript, now.toISOString(), id);
      const data: Record<string, unknown> = { deploy: id };
      if (outcome.reason !== undefined) data.reason = outcome.reason;
      appendEvent(db, { actor: outcome.actor ?? 'imago', kind: `deploy.${state}`, service: deploy.service, releaseId: deploy.releaseId, data }, now);
      return getDeploy(db, id)!;
    })
    .immediate();
}

/** The deploy with this id, or undefined. */
export function getDeploy(db: Db, id: number): Deploy | undefined {
  const row = db.prepare(`SELECT * FROM deploys WHERE id = ?`).get(id) as Row | undefined;
  return row ? toDeploy(row) : undefined;
}

/** A service's deploys, newest first. */
export function listDeploys(db: Db, service: string): Deploy[] {
  return (db.prepare(`SELECT * FROM deploys WHERE service = ? ORDER BY id DESC`).all(service) as Row[]).map(toDeploy);
}

/** The service's running deploy, or undefined. */
export function runningDeploy(db: Db, service: string): Deploy | undefined {
  const row = db.prepare(`SELECT * FROM deploys WHERE service = ? AND state = 'running'`).get(service) as Row | undefined;
  return row ? toDeploy(row) : undefined;
}

/** Every deploy still marked running, oldest first: what a restarted control plane resumes or aborts. */
export function runningDeploys(db: Db): Deploy[] {
  return (db.prepare(`SELECT * FROM deploys WHERE state = 'running' ORDER BY id`).all() as Row[]).map(toDeploy);
}

function toDeploy(row: Row): Deploy {
  return {
    id: row.id,
    service: row.service,
    releaseId: row.release_id,
    fromReleaseId: orUndefined(row.from_release_id),
    plan: JSON.parse(row.plan) as unknown,
    state: row.state,
    startedAt: row.started_at,
    finishedAt: orUndefined(row.finished_at),
    reason: orUndefined(row.reason),
    transcript: row.transcript === null ? undefined : (JSON.parse(row.transcript) as unknown),
    fromReplicas: orUndefined(row.from_replicas),
  };
}

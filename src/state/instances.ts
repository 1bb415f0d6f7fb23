import { ConfigError } from '../errors.js';
import type { Db } from '../store/db.js';
import { checkId, checkOneOf, checkText, orUndefined } from './check.js';
import { appendEvent } from './ledger.js';
import { getRelease } from './releases.js';
import type { InstanceRow, InstanceState } from './types.js';

/** An instance's states in the order it passes them; it moves only forward, or to a final state (the last four). */
export const INSTANCE_STATES: readonly InstanceState[] = ['starting', 'healthy', 'serving', 'draining', 'stopped', 'failed', 'crashed', 'lost'];

/** The states an instance ends in. */
export const FINAL_INSTANCE_STATES: readonly InstanceState[] = ['stopped', 'failed', 'crashed', 'lost'];

/** The states in which imago counts on an instance running. */
export const LIVE_INSTANCE_STATES: readonly InstanceState[] = ['starting', 'healthy', 'serving', 'draining'];

/** An instance a provider just started. */
export interface NewInstance {
  id: string;
  service: string;
  releaseId: number;
  provider: string;
  port?: number;
  state?: InstanceState;
  actor?: string;
  /** Its lineage's failures in a row that led to its start (default 0). */
  attempt?: number;
  /** The failed instance whose place it takes (no longer awaiting, once this one is recorded). */
  replaces?: string;
}

interface Row {
  id: string;
  service: string;
  release_id: number;
  provider: string;
  port: number | null;
  state: InstanceState;
  created_at: string;
  updated_at: string;
  attempt: number;
  replaces: string | null;
  healthy_at: string | null;
  ended_at: string | null;
  reason: string | null;
  streak: number | null;
  awaiting: number;
  output: string | null;
}

/** Records a new instance of a release (default state `starting`) and its `instance.created` event. */
export function recordInstance(db: Db, input: NewInstance, now: Date = new Date()): InstanceRow {
  const id = checkText('instance id', input.id);
  const service = checkText('service', input.service);
  const releaseId = checkId('releaseId', input.releaseId);
  const provider = checkText('provider', input.provider);
  const state = checkOneOf('state', input.state ?? 'starting', INSTANCE_STATES);
  if (input.port !== undefined) checkId('port', input.port);
  return db
    .transaction((): InstanceRow => {
      const release = getRelease(db, releaseId);
      if (!release || release.service !== service) throw new ConfigError(`releaseId: expected a release of service '${service}', got ${releaseId}`);
      if (getInstance(db, id)) throw new ConfigError(`instance '${id}' is already recorded`);
      const at = now.toISOString();
      db.prepare(
        `INSERT INTO instances (id, service, release_id, provider, port, state, created_at, updated_at, attempt, replaces) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(id, service, releaseId, provider, input.port ?? null, state, at, at, input.attempt ?? 0, input.replaces ?? null);
      if (input.replaces) db.prepare(`UPDATE instances SET awaiting = 0 WHERE id = ? AND service = ?`).run(input.replaces, service);
      const data: Record<string, unknown> = { provider, port: input.port, state };
      if (input.replaces) Object.assign(data, { replaces: input.replaces, attempt: input.attempt ?? 0 });
      appendEvent(db, { actor: input.actor ?? 'imago', kind: 'instance.created', service, releaseId, instance: id, data }, now);
      return getInstance(db, id)!;
    })
    .immediate();
}

/** Moves an instance forward to `state` (a ConfigError for a backward move or out of a final state) and appends `instance.<state>`; the same state is a no-op. */
export function setInstanceState(db: Db, id: string, state: InstanceState, options: { reason?: string; actor?: string; now?: Date } = {}): InstanceRow {
  checkOneOf('state', state, INSTANCE_STATES);
  const now = options.now ?? new Date();
  return db
    .transaction((): InstanceRow => {
      const instance = getInstance(db, id);
      if (!instance) throw new ConfigError(`instance '${id}' not found`);
      if (instance.state === state) return instance;
      if (!canMove(instance.state, state)) throw new ConfigError(`instance '${id}' cannot go from '${instance.state}' to '${state}'`);
      db.prepare(`UPDATE instances SET state = ?, updated_at = ? WHERE id = ?`).run(state, now.toISOString(), id);
      const data: Record<string, unknown> = { from: instance.state };
      if (options.reason !== undefined) data.reason = options.reason;
      appendEvent(db, { actor: options.actor ?? 'imago', kind: `instance.${state}`, service: instance.service, releaseId: instance.releaseId, instance: id, data }, now);
      return getInstance(db, id)!;
    })
    .immediate();
}

/**
 * Ends an instance in a final state with why; a failure of the desired release also records
 * its run of failures and whether its place waits for a replacement. Appends `instance.<state>`.
 * An instance already ended is left as it is (a no-op: the first ending is the true one).
 */
export function endInstance(
  db: Db,
  id: string,
  end: { state: 'stopped' | 'failed' | 'crashed' | 'lost'; reason: string; streak?: number; awaiting?: boolean; actor?: string; now?: Date },
): InstanceRow | undefined {
  checkOneOf('state', end.state, FINAL_INSTANCE_STATES);
  const now = end.now ?? new Date();
  return db
    .transaction((): InstanceRow | undefined => {
      const instance = getInstance(db, id);
      if (!instance || FINAL_INSTANCE_STATES.includes(instance.state)) return instance;
      db.prepare(`UPDATE instances SET state = ?, reason = ?, streak = ?, awaiting = ?, ended_at = ?, updated_at = ? WHERE id = ?`).run(
        end.state,
        end.reason,
        end.streak ?? null,
        end.awaiting ? 1 : 0,
        now.toISOString(),
        now.toISOString(),
        id,
      );
      const data: Record<string, unknown> = { from: instance.state, reason: end.reason };
      if (end.streak !== undefined) data.streak = end.streak;
      if (end.awaiting) data.awaitingReplacement = true;
      appendEvent(db, { actor: end.actor ?? 'imago', kind: `instance.${end.state}`, service: instance.service, releaseId: instance.releaseId, instance: id, data }, now);
      return getInstance(db, id)!;
    })
    .immediate();
}

/**
 * Moves running instances to another release of the same service with the same image and
 * config (a rollback to a release whose instances `keepPrevious` kept): each is recorded as
 * `instance.adopted`, naming both releases. Returns the ids moved.
 */
export function adoptInstances(db: Db, ids: readonly string[], toReleaseId: number, options: { actor?: string; now?: Date } = {}): string[] {
  const now = options.now ?? new Date();
  return db
    .transaction((): string[] => {
      const moved: string[] = [];
      for (const id of ids) {
        const instance = getInstance(db, id);
        if (!instance || FINAL_INSTANCE_STATES.includes(instance.state) || instance.releaseId === toReleaseId) continue;
        // No longer draining: it is the new release's, healthy, waiting to be routed.
        db.prepare(`UPDATE instances SET release_id = ?, state = 'healthy', updated_at = ? WHERE id = ?`).run(toReleaseId, now.toISOString(), id);
        appendEvent(db, { actor: options.actor ?? 'imago', kind: 'instance.adopted', service: instance.service, releaseId: toReleaseId, instance: id, data: { fromRelease: instance.releaseId, reason: 'kept by keepPrevious: the same image and config' } }, now);
        moved.push(id);
      }
      return moved;
    })
    .immediate();
}

/** Records the port an instance was given (after its record: the port is chosen in the background). */
export function setPort(db: Db, id: string, port: number): void {
  checkId('port', port);
  db.prepare(`UPDATE instances SET port = ? WHERE id = ?`).run(port, id);
}

/** Keeps an ended instance's last output lines (read once its log is complete). Not a ledger event: the ending is. */
export function setOutput(db: Db, id: string, lines: readonly string[]): void {
  db.prepare(`UPDATE instances SET output = ? WHERE id = ?`).run(JSON.stringify(lines), id);
}

/** Records that an instance passed its health gate (the first time only), moving it to `healthy` when it was starting. */
export function markHealthy(db: Db, id: string, options: { actor?: string; now?: Date } = {}): void {
  const now = options.now ?? new Date();
  db.transaction(() => {
    const instance = getInstance(db, id);
    if (!instance || instance.healthyAt !== undefined) return;
    db.prepare(`UPDATE instances SET healthy_at = ? WHERE id = ?`).run(now.toISOString(), id);
    if (instance.state === 'starting') setInstanceState(db, id, 'healthy', { ...options, now });
  }).immediate();
}

/** Failures whose places no longer wait for a replacement (a scale-down, another release). */
export function dropAwaiting(db: Db, ids: readonly string[]): void {
  const update = db.prepare(`UPDATE instances SET awaiting = 0 WHERE id = ?`);
  db.transaction(() => ids.forEach((id) => update.run(id))).immediate();
}

/** A service's failed instances whose places wait for a replacement, oldest first. */
export function awaitingReplacement(db: Db, service: string): InstanceRow[] {
  return (db.prepare(`SELECT * FROM instances WHERE service = ? AND awaiting = 1 ORDER BY ended_at, id`).all(service) as Row[]).map(toInstance);
}

/** The newest failure (a failed, crashed or lost instance with a streak) of one release, or undefined. */
export function lastFailure(db: Db, service: string, releaseId: number): InstanceRow | undefined {
  const row = db
    .prepare(`SELECT * FROM instances WHERE service = ? AND release_id = ? AND streak IS NOT NULL ORDER BY ended_at DESC, id DESC LIMIT 1`)
    .get(service, releaseId) as Row | undefined;
  return row ? toInstance(row) : undefined;
}

/** The instance with this id, or undefined. */
export function getInstance(db: Db, id: string): InstanceRow | undefined {
  const row = db.prepare(`SELECT * FROM instances WHERE id = ?`).get(id) as Row | undefined;
  return row ? toInstance(row) : undefined;
}

/** A service's instances, oldest first, optionally only of one release or in some states. */
export function listInstances(db: Db, service: string, filter: { releaseId?: number; states?: readonly InstanceState[] } = {}): InstanceRow[] {
  const rows = (db.prepare(`SELECT * FROM instances WHERE service = ? ORDER BY created_at, id`).all(service) as Row[]).map(toInstance);
  return rows.filter((i) => (filter.releaseId === undefined || i.releaseId === filter.releaseId) && (filter.states === undefined || filter.states.includes(i.state)));
}

function canMove(from: InstanceState, to: InstanceState): boolean {
  if (FINAL_INSTANCE_STATES.includes(from)) return false;
  return FINAL_INSTANCE_STATES.includes(to) || INSTANCE_STATES.indexOf(to) > INSTANCE_STATES.indexOf(from);
}

function toInstance(row: Row): InstanceRow {
  return {
    id: row.id,
    service: row.service,
    releaseId: row.release_id,
    provider: row.provider,
    port: orUndefined(row.port),
    state: row.state,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    attempt: row.attempt,
    replaces: orUndefined(row.replaces),
    healthyAt: orUndefined(row.healthy_at),
    endedAt: orUndefined(row.ended_at),
    reason: orUndefined(row.reason),
    streak: orUndefined(row.streak),
    awaiting: row.awaiting === 1,
    output: row.output === null || row.output === undefined ? undefined : (JSON.parse(row.output) as string[]),
  };
}

/** Every instance ever recorded, with its release's version and the provider its service names: what the log collector labels lines with and reads them through. */
export function instanceLabels(db: Db): Array<{ id: string; service: string; provider: string; version: number; state: InstanceState; endedAt: string | undefined }> {
  const rows = db.prepare('SELECT i.id, i.service, COALESCE(s.provider, i.provider) AS provider, r.version, i.state, i.ended_at FROM instances i JOIN releases r ON r.id = i.release_id LEFT JOIN services s ON s.name = i.service ORDER BY i.created_at, i.id').all() as Array<{ id: string; service: string; provider: string; version: number; state: InstanceState; ended_at: string | null }>;
  return rows.map((r) => ({ id: r.id, service: r.service, provider: r.provider, version: r.version, state: r.state, endedAt: orUndefined(r.ended_at) }));
}

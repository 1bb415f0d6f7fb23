import { ConfigError } from '../errors.js';
import type { Db } from '../store/db.js';
import { checkId, checkOneOf, checkText, orUndefined } from './check.js';
import { appendEvent } from './ledger.js';
import { getRelease } from './releases.js';
import type { InstanceRow, InstanceState } from './types.js';

/** An instance's states in the order it passes them; it moves only forward, or to `failed`, and `stopped`/`failed` are final. */
export const INSTANCE_STATES: readonly InstanceState[] = ['starting', 'healthy', 'serving', 'draining', 'stopped', 'failed'];

/** An instance a provider just started. */
export interface NewInstance {
  id: string;
  service: string;
  releaseId: number;
  provider: string;
  port?: number;
  state?: InstanceState;
  actor?: string;
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
      db.prepare(`INSERT INTO instances (id, service, release_id, provider, port, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`).run(
        id,
        service,
        releaseId,
        provider,
        input.port ?? null,
        state,
        at,
        at,
      );
      appendEvent(db, { actor: input.actor ?? 'imago', kind: 'instance.created', service, releaseId, instance: id, data: { provider, port: input.port, state } }, now);
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
  if (from === 'stopped' || from === 'failed') return false;
  return to === 'failed' || INSTANCE_STATES.indexOf(to) > INSTANCE_STATES.indexOf(from);
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
  };
}

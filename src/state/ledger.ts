import { createHash } from 'node:crypto';
import type { Db } from '../store/db.js';
import { canonicalJson } from './canonical-json.js';
import { checkId, checkObject, checkText, orUndefined } from './check.js';
import type { LedgerEvent } from './types.js';

/** The prev_hash of the first event. */
export const GENESIS_HASH = '0'.repeat(64);

/** What a caller says happened; the ledger adds seq, time and the chain. */
export interface NewEvent {
  actor: string;
  kind: string;
  service?: string;
  releaseId?: number;
  instance?: string;
  data?: Record<string, unknown>;
}

/** The result of re-walking the chain: intact (with its head hash), or the first event that breaks it. */
export type LedgerCheck = { ok: true; count: number; head: string } | { ok: false; seq: number; reason: string };

interface EventRow {
  seq: number;
  at: string;
  actor: string;
  kind: string;
  service: string | null;
  release_id: number | null;
  instance: string | null;
  data: string;
  prev_hash: string;
  hash: string;
}

/** Appends an event to the ledger, chained to the one before it, in an IMMEDIATE transaction (a savepoint inside another). */
export function appendEvent(db: Db, event: NewEvent, now: Date = new Date()): LedgerEvent {
  const actor = checkText('actor', event.actor);
  const kind = checkText('kind', event.kind);
  if (event.releaseId !== undefined) checkId('releaseId', event.releaseId);
  const data = canonicalJson(event.data === undefined ? {} : checkObject('data', event.data));
  return db
    .transaction((): LedgerEvent => {
      const last = db.prepare(`SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1`).get() as { seq: number; hash: string } | undefined;
      const row: Omit<EventRow, 'hash'> = {
        seq: (last?.seq ?? 0) + 1,
        at: now.toISOString(),
        actor,
        kind,
        service: event.service ?? null,
        release_id: event.releaseId ?? null,
        instance: event.instance ?? null,
        data,
        prev_hash: last?.hash ?? GENESIS_HASH,
      };
      const full: EventRow = { ...row, hash: hashEvent(row) };
      db.prepare(
        `INSERT INTO events (seq, at, actor, kind, service, release_id, instance, data, prev_hash, hash)
         VALUES (@seq, @at, @actor, @kind, @service, @release_id, @instance, @data, @prev_hash, @hash)`,
      ).run(full);
      return toEvent(full);
    })
    .immediate();
}

/** Lists events oldest first: all, one service's, those after `sinceSeq`, those at or after `since` (a Date), at most `limit`. */
export function listEvents(db: Db, filter: { service?: string; releaseId?: number; sinceSeq?: number; since?: Date; limit?: number } = {}): LedgerEvent[] {
  const where: string[] = ['seq > @sinceSeq'];
  const params: Record<string, unknown> = { sinceSeq: filter.sinceSeq ?? 0, limit: filter.limit ?? -1 };
  if (filter.since !== undefined) {
    // Every time is written by toISOString (UTC, fixed width): text order is time order.
    where.push('at >= @since');
    params.since = filter.since.toISOString();
  }
  if (filter.service !== undefined) {
    where.push('service = @service');
    params.service = filter.service;
  }
  if (filter.releaseId !== undefined) {
    where.push('release_id = @releaseId');
    params.releaseId = filter.releaseId;
  }
  const rows = db.prepare(`SELECT * FROM events WHERE ${where.join(' AND ')} ORDER BY seq LIMIT @limit`).all(params) as EventRow[];
  return rows.map(toEvent);
}

/**
 * Re-walks the whole chain: every seq follows the one before, every prev_hash is the hash before
 * it, every hash is recomputed from the row. Finds an edited, removed or inserted event even when
 * the append-only triggers were dropped (removing only the newest events is not detectable: keep the head).
 */
export function verifyLedger(db: Db): LedgerCheck {
  let expectedSeq = 1;
  let prev = GENESIS_HASH;
  let count = 0;
  for (const row of db.prepare(`SELECT * FROM events ORDER BY seq`).iterate() as IterableIterator<EventRow>) {
    if (row.seq !== expectedSeq) {
      return { ok: false, seq: row.seq, reason: row.seq > expectedSeq ? `events ${expectedSeq}–${row.seq - 1} before it are missing` : `seq ${row.seq} is out of order` };
    }
    if (row.prev_hash !== prev) return { ok: false, seq: row.seq, reason: `its prev_hash ${short(row.prev_hash)} is not the hash of the event before it (${short(prev)})` };
    let actual: string;
    try {
      actual = hashEvent(row);
    } catch (error) {
      return { ok: false, seq: row.seq, reason: `its data is not valid JSON: ${(error as Error).message}` };
    }
    if (actual !== row.hash) return { ok: false, seq: row.seq, reason: `its content does not match its hash (stored ${short(row.hash)}, computed ${short(actual)}): the event was changed` };
    prev = row.hash;
    expectedSeq++;
    count++;
  }
  return { ok: true, count, head: prev };
}

/** sha256 (hex) of prev_hash + the canonical JSON of the event's fields. */
function hashEvent(row: Omit<EventRow, 'hash'>): string {
  const fields = {
    seq: row.seq,
    at: row.at,
    actor: row.actor,
    kind: row.kind,
    service: row.service,
    releaseId: row.release_id,
    instance: row.instance,
    data: JSON.parse(row.data) as unknown,
  };
  return createHash('sha256').update(row.prev_hash + canonicalJson(fields, 'event')).digest('hex');
}

function toEvent(row: EventRow): LedgerEvent {
  return {
    seq: row.seq,
    at: row.at,
    actor: row.actor,
    kind: row.kind,
    service: orUndefined(row.service),
    releaseId: orUndefined(row.release_id),
    instance: orUndefined(row.instance),
    data: JSON.parse(row.data) as Record<string, unknown>,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

function short(hash: string): string {
  return hash.slice(0, 12);
}

/** The seq of the newest event (0 when the ledger is empty). */
export function lastEventSeq(db: Db): number {
  return (db.prepare('SELECT max(seq) AS seq FROM events').get() as { seq: number | null }).seq ?? 0;
}

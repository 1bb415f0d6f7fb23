import type { Db } from '../store/db.js';
import { orUndefined } from './check.js';
import { appendEvent } from './ledger.js';
import type { DriftFinding } from './types.js';

interface Row {
  id: number;
  service: string;
  instance: string;
  release_id: number | null;
  finding: string;
  action: 'replace' | 'report';
  found_at: string;
}

/**
 * Records a drift finding of an instance once (the same line again is not new) and appends
 * `drift.found` with what the policy does about it. Returns the finding when it is new.
 */
export function recordDrift(
  db: Db,
  input: { service: string; instance: string; releaseId?: number | undefined; finding: string; action: 'replace' | 'report'; actor?: string },
  now: Date = new Date(),
): DriftFinding | undefined {
  return db
    .transaction((): DriftFinding | undefined => {
      const { changes, lastInsertRowid } = db
        .prepare(`INSERT OR IGNORE INTO drift_findings (service, instance, release_id, finding, action, found_at) VALUES (?, ?, ?, ?, ?, ?)`)
        .run(input.service, input.instance, input.releaseId ?? null, input.finding, input.action, now.toISOString());
      if (changes === 0) return undefined;
      appendEvent(
        db,
        { actor: input.actor ?? 'imago', kind: 'drift.found', service: input.service, ...(input.releaseId !== undefined ? { releaseId: input.releaseId } : {}), instance: input.instance, data: { finding: input.finding, action: input.action } },
        now,
      );
      return toFinding(db.prepare(`SELECT * FROM drift_findings WHERE id = ?`).get(Number(lastInsertRowid)) as Row);
    })
    .immediate();
}

/** Drift findings, oldest first: all, or one service's, at most `limit` (the newest ones). */
export function listDrift(db: Db, filter: { service?: string; limit?: number } = {}): DriftFinding[] {
  const rows = (
    filter.service === undefined
      ? db.prepare(`SELECT * FROM drift_findings ORDER BY id DESC LIMIT ?`).all(filter.limit ?? -1)
      : db.prepare(`SELECT * FROM drift_findings WHERE service = ? ORDER BY id DESC LIMIT ?`).all(filter.service, filter.limit ?? -1)
  ) as Row[];
  return rows.reverse().map(toFinding);
}

function toFinding(row: Row): DriftFinding {
  return { id: row.id, service: row.service, instance: row.instance, releaseId: orUndefined(row.release_id), finding: row.finding, action: row.action, foundAt: row.found_at };
}

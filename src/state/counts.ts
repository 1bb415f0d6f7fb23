import type { Db } from '../store/db.js';
import { LIVE_INSTANCE_STATES } from './instances.js';

/** What `/metrics` reports from the state database: counts that survive a control plane's restart. */
export interface StateCounts {
  /** Instances imago counts on now, by service and state (starting, healthy, serving, draining). */
  instances: Array<{ service: string; state: string; count: number }>;
  /** Finished deploys by service and how they ended (succeeded, failed, aborted): a counter never goes down. */
  deploys: Array<{ service: string; state: string; count: number }>;
  /** Each finished deploy's length in seconds, by service and outcome. */
  deployDurations: Array<{ service: string; state: string; seconds: number }>;
  /** Releases made by a rollback, by service. */
  rollbacks: Array<{ service: string; count: number }>;
  /** Instances started in a failed one's place, by service and how the one replaced ended. */
  replacements: Array<{ service: string; reason: string; count: number }>;
  /** Drift findings, by service. */
  drift: Array<{ service: string; count: number }>;
}

/** Reads the counts `/metrics` reports (a few grouped queries; no row is changed). */
export function stateCounts(db: Db): StateCounts {
  const live = LIVE_INSTANCE_STATES.map(() => '?').join(', ');
  return {
    instances: db.prepare(`SELECT service, state, count(*) AS count FROM instances WHERE state IN (${live}) GROUP BY service, state ORDER BY service, state`).all(...LIVE_INSTANCE_STATES) as StateCounts['instances'],
    deploys: db.prepare("SELECT service, state, count(*) AS count FROM deploys WHERE state != 'running' GROUP BY service, state ORDER BY service, state").all() as StateCounts['deploys'],
    deployDurations: db
      .prepare("SELECT service, state, (julianday(finished_at) - julianday(started_at)) * 86400.0 AS seconds FROM deploys WHERE finished_at IS NOT NULL AND state != 'running'")
      .all() as StateCounts['deployDurations'],
    rollbacks: db.prepare('SELECT service, count(*) AS count FROM releases WHERE rollback_of IS NOT NULL GROUP BY service ORDER BY service').all() as StateCounts['rollbacks'],
    replacements: db
      .prepare('SELECT n.service AS service, o.state AS reason, count(*) AS count FROM instances n JOIN instances o ON o.id = n.replaces GROUP BY n.service, o.state ORDER BY 1, 2')
      .all() as StateCounts['replacements'],
    drift: db.prepare('SELECT service, count(*) AS count FROM drift_findings GROUP BY service ORDER BY service').all() as StateCounts['drift'],
  };
}

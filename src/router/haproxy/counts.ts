import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { StatusClasses } from '../router-control.js';

/** One server's counters, as `show stat` gives them. */
export interface TargetCounts {
  requests: number;
  responses: StatusClasses;
  bytesIn: number;
  bytesOut: number;
}

/** The counters of a router's worker: the frontend's requests, the backend's retries, each server's counts. */
export interface Counts {
  requests: number;
  retried: number;
  targets: Record<string, TargetCounts>;
}

/** No counts yet. */
export const NO_COUNTS: Counts = { requests: 0, retried: 0, targets: {} };

const NO_TARGET: TargetCounts = { requests: 0, responses: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 }, bytesIn: 0, bytesOut: 0 };

/**
 * The counts in a `show stat` answer (rows by server name; `FRONTEND` and `BACKEND` for
 * those): requests are the frontend's HTTP requests, or in TCP mode its connections.
 */
export function countsOf(stat: Map<string, Record<string, string>>, http: boolean): Counts {
  const n = (row: Record<string, string> | undefined, key: string) => Number(row?.[key] || 0);
  const frontend = stat.get('FRONTEND');
  const backend = stat.get('BACKEND');
  const targets: Record<string, TargetCounts> = {};
  for (const [name, row] of stat) {
    if (name === 'FRONTEND' || name === 'BACKEND') continue;
    targets[name] = {
      requests: n(row, 'stot'),
      responses: { '1xx': n(row, 'hrsp_1xx'), '2xx': n(row, 'hrsp_2xx'), '3xx': n(row, 'hrsp_3xx'), '4xx': n(row, 'hrsp_4xx'), '5xx': n(row, 'hrsp_5xx') },
      bytesIn: n(row, 'bin'),
      bytesOut: n(row, 'bout'),
    };
  }
  return { requests: http ? n(frontend, 'req_tot') : n(frontend, 'stot'), retried: n(backend, 'wredis') + n(backend, 'wretr'), targets };
}

/** One target's counts in `counts`, zero when it has none. */
export function targetCounts(counts: Counts, id: string): TargetCounts {
  return counts.targets[id] ?? NO_TARGET;
}

/** The sum of two counts, keeping the targets in `keep` only (those no longer served are dropped). */
export function addCounts(a: Counts, b: Counts, keep: Iterable<string>): Counts {
  const targets: Record<string, TargetCounts> = {};
  for (const id of keep) {
    const x = targetCounts(a, id);
    const y = targetCounts(b, id);
    const responses = { ...x.responses };
    for (const key of Object.keys(responses) as Array<keyof StatusClasses>) responses[key] += y.responses[key];
    targets[id] = { requests: x.requests + y.requests, responses, bytesIn: x.bytesIn + y.bytesIn, bytesOut: x.bytesOut + y.bytesOut };
  }
  return { requests: a.requests + b.requests, retried: a.retried + b.retried, targets };
}

/** The counts kept in `file`; none when it is missing or unreadable. */
export function readCounts(file: string): Counts {
  try {
    const counts = JSON.parse(readFileSync(file, 'utf8')) as Counts | null;
    return counts && typeof counts.requests === 'number' && typeof counts.retried === 'number' && typeof counts.targets === 'object' ? counts : NO_COUNTS;
  } catch {
    return NO_COUNTS;
  }
}

/** Writes `counts` to `file` whole or not at all (a temporary file renamed over it). */
export function writeCounts(file: string, counts: Counts): void {
  writeFileSync(`${file}.tmp`, `${JSON.stringify(counts)}\n`, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

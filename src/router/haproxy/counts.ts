import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import type { StatusClasses } from '../router-control.js';

/** One server's counters, as `show stat` gives them. */
export interface TargetCounts {
  requests: number;
  responses: StatusClasses;
  bytesIn: number;
  bytesOut: number;
}

/** A router's counters: the frontend's requests, the backend's retries, each server's counts. */
export interface Counts {
  requests: number;
  retried: number;
  targets: Record<string, TargetCounts>;
}

/**
 * What the workers a reload replaced had counted (`carried.json`). `pending` is what the worker
 * `worker` had counted just before a reload was asked of it: it counts once another worker
 * answers (the reload took, however late), and never while `worker` itself still answers (the
 * reload failed, and it counts on by itself).
 */
export interface Carried {
  base: Counts;
  pending?: { worker: number; counted: Counts };
}

/** No counts yet. */
export const NO_COUNTS: Counts = { requests: 0, retried: 0, targets: {} };

/** Nothing carried: a HAProxy started anew. */
export const NOTHING_CARRIED: Carried = { base: NO_COUNTS };

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

/** One target's counts in `counts` (a copy), zero when it has none. */
export function targetCounts(counts: Counts, id: string): TargetCounts {
  const t = counts.targets[id];
  return {
    requests: t?.requests ?? 0,
    responses: { '1xx': t?.responses['1xx'] ?? 0, '2xx': t?.responses['2xx'] ?? 0, '3xx': t?.responses['3xx'] ?? 0, '4xx': t?.responses['4xx'] ?? 0, '5xx': t?.responses['5xx'] ?? 0 },
    bytesIn: t?.bytesIn ?? 0,
    bytesOut: t?.bytesOut ?? 0,
  };
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

/**
 * What is carried when `worker` answers: the base, and the pending counts of a reload when a
 * worker other than the one it was asked of answers. Targets not in `keep` are dropped.
 */
export function carriedFor(carried: Carried, worker: number, keep: Iterable<string>): Counts {
  const ids = [...keep];
  return carried.pending && carried.pending.worker !== worker ? addCounts(carried.base, carried.pending.counted, ids) : addCounts(carried.base, NO_COUNTS, ids);
}

/** A count as kept: a number that is not one (or is negative) is 0. */
const count = z.number().finite().nonnegative().catch(0);
const statusClasses = z.object({ '1xx': count, '2xx': count, '3xx': count, '4xx': count, '5xx': count });
const targetCountsSchema = z.object({ requests: count, responses: statusClasses.catch(() => targetCounts(NO_COUNTS, '').responses), bytesIn: count, bytesOut: count });
const countsSchema = z.object({ requests: count, retried: count, targets: z.record(z.string(), targetCountsSchema.catch(() => targetCounts(NO_COUNTS, ''))) });
/** `carried.json`: a pending reload without a worker's pid, or without counts, is dropped. */
const carriedSchema = z.object({ base: countsSchema, pending: z.object({ worker: z.number().int(), counted: countsSchema }).optional().catch(undefined) });

/** What is carried in `file`; nothing when it is missing, or not what this module writes. */
export function readCarried(file: string): Carried {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return NOTHING_CARRIED;
  }
  const parsed = carriedSchema.safeParse(raw);
  if (!parsed.success) return NOTHING_CARRIED;
  const { base, pending } = parsed.data;
  return pending ? { base, pending } : { base };
}

/** Writes `carried` to `file` whole or not at all (a temporary file renamed over it). */
export function writeCarried(file: string, carried: Carried): void {
  writeFileSync(`${file}.tmp`, `${JSON.stringify(carried)}\n`, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

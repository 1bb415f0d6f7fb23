import type { LedgerEvent } from './types.js';

/** One service as it was at a moment, reconstructed from the ledger. */
export interface ServiceAt {
  service: string;
  /** The release that was live (its id), if one was. */
  liveReleaseId: number | undefined;
  /** The instances that ran then (created and not yet ended), with the release each belonged to then. */
  instances: Array<{ id: string; releaseId: number; since: string }>;
}

const ENDED = new Set(['instance.stopped', 'instance.failed', 'instance.crashed', 'instance.lost']);

/**
 * What ran at `at` (ms since the epoch), from the ledger's events (any order; walked by seq):
 * per service, the release that was live (the last `release.live` at or before the moment)
 * and the instances that had been created and had not ended, each under the release it
 * belonged to then (`instance.adopted` moves one to another release). Pure.
 */
export function runningAt(events: readonly LedgerEvent[], at: number): ServiceAt[] {
  const services = new Map<string, ServiceAt>();
  const of = (service: string) => {
    let s = services.get(service);
    if (!s) services.set(service, (s = { service, liveReleaseId: undefined, instances: [] }));
    return s;
  };
  const instances = new Map<string, { service: string; releaseId: number; since: string }>();
  for (const e of [...events].sort((a, b) => a.seq - b.seq)) {
    if (Date.parse(e.at) > at) continue; // (not break: a clock stepped back leaves times out of seq order)
    if (!e.service) continue;
    const s = of(e.service);
    if (e.kind === 'release.live' && e.releaseId !== undefined) s.liveReleaseId = e.releaseId;
    if (!e.instance) continue;
    if (e.kind === 'instance.created' && e.releaseId !== undefined) instances.set(e.instance, { service: e.service, releaseId: e.releaseId, since: e.at });
    else if (e.kind === 'instance.adopted' && e.releaseId !== undefined) {
      const i = instances.get(e.instance);
      if (i) i.releaseId = e.releaseId;
    } else if (ENDED.has(e.kind)) instances.delete(e.instance);
  }
  for (const [id, i] of instances) of(i.service).instances.push({ id, releaseId: i.releaseId, since: i.since });
  return [...services.values()].sort((a, b) => a.service.localeCompare(b.service));
}

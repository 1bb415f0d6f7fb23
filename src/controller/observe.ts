import { constants } from 'node:os';
import type { Observed, ObservedInstance, PendingFailure } from '../core/fleet.js';
import { Label, type Provider, type ProviderInstance } from '../providers/provider.js';
import type { RouterControl } from '../router/router-control.js';
import { awaitingReplacement, FINAL_INSTANCE_STATES, getInstance, lastFailure, listInstances, LIVE_INSTANCE_STATES } from '../state/instances.js';
import type { InstanceRow } from '../state/types.js';
import type { Db } from '../store/db.js';
import type { Executor } from './executor.js';
import type { HealthWatchers } from './health-watchers.js';
import { withDeadline } from '../util/deadline.js';

/** What one look at a service found: reconcile's input, and the provider's view of each instance. */
export interface Observation {
  observed: Observed;
  /** The provider's instances by id (addresses, logs, drift). */
  listed: Map<string, ProviderInstance>;
  /** The state database's rows by id. */
  rows: Map<string, InstanceRow>;
  /** Router targets that are no instance of this service now (kept while no control plane ran): forgotten. */
  strays: string[];
}

/** What the observer reads from. */
export interface ObserveContext {
  service: string;
  db: Db;
  provider: Provider;
  router: RouterControl;
  watchers: HealthWatchers;
  executor: Executor;
  /** Starts watching a running instance's health (adopted ones too). */
  watch: (instance: ProviderInstance, row: InstanceRow) => void;
  /** The loop's time now. */
  now: number;
  /** How long the provider may take to list (ms): a provider that never answers fails the round, it does not hang it. */
  listTimeoutMs?: number;
}

/**
 * Looks at one service as reconcile needs it: the provider's instances with their health,
 * routing and drift; instances still being made; starts that failed; instances the state
 * database counts on that the provider no longer has (lost); instances with imago's labels
 * that no release of this home made (unmanaged); and the failures whose places wait for a
 * replacement.
 */
export async function observe(ctx: ObserveContext, desiredRelease: number | undefined): Promise<Observation> {
  const { executor } = ctx;
  // Starts that finish while the provider lists are not lost: what was being made before the list counts.
  const creatingBefore = new Map(executor.creating);
  const listed = new Map((await withDeadline(ctx.provider.list({ [Label.service]: ctx.service }), ctx.listTimeoutMs ?? LIST_TIMEOUT_MS, `the ${ctx.provider.name} provider did not list the instances`)).map((i) => [i.id, i]));
  // The rows imago counts on, and those of what the provider lists (not every row the service ever had).
  const rows = new Map(listInstances(ctx.db, ctx.service, { states: LIVE_INSTANCE_STATES }).map((row) => [row.id, row]));
  for (const id of listed.keys()) {
    if (rows.has(id)) continue;
    const row = getInstance(ctx.db, id);
    if (row && row.service === ctx.service) rows.set(id, row);
  }
  // What the router has: its own process's, which went on routing while no control plane ran.
  // (Each router bounds its own calls, and fails them as a RouterError.)
  const routing = await ctx.router.snapshot();
  const routed = new Set(routing.targets.filter((t) => t.routed).map((t) => t.id));
  const inflight = new Map(routing.targets.map((t) => [t.id, t.inflight]));
  const instances: ObservedInstance[] = [];

  for (const instance of listed.values()) {
    if (executor.stopping.has(instance.id) || executor.cancelled.has(instance.id)) continue;
    const row = rows.get(instance.id);
    if (instance.foreign || (!row && !executor.creating.has(instance.id) && !creatingBefore.has(instance.id))) {
      instances.push({ id: instance.id, release: undefined, state: instance.state, health: 'starting', routed: false, startedAt: instance.startedAt, drift: instance.drift });
      continue;
    }
    const releaseId = row?.releaseId ?? (executor.creating.get(instance.id) ?? creatingBefore.get(instance.id))?.releaseId;
    const ended = row !== undefined && FINAL_INSTANCE_STATES.includes(row.state);
    if (instance.state === 'running' && row && !ended) ctx.watch(instance, row);
    instances.push({
      id: instance.id,
      release: releaseId,
      state: instance.state,
      health: ctx.watchers.status(instance.id) ?? 'starting',
      healthyAt: ctx.watchers.healthyAt(instance.id) ?? (row?.healthyAt ? Date.parse(row.healthyAt) : undefined),
      // Its gate began when imago began watching it: at its start, or now for one just adopted.
      gateSince: ctx.watchers.since(instance.id) ?? (creatingBefore.get(instance.id) ?? executor.creating.get(instance.id))?.startedAt ?? ctx.now,
      routed: routed.has(instance.id),
      // One imago already ended but that still runs (a destroy that failed): it drains and goes.
      // One recorded draining when a control plane before this one unrouted it: its drain goes on from then.
      unroutedAt: executor.unroutedAt.get(instance.id) ?? (ended ? Date.parse(row!.endedAt ?? row!.updatedAt) : row?.state === 'draining' ? Date.parse(row.updatedAt) : undefined),
      inflight: inflight.get(instance.id) ?? 0,
      startedAt: instance.startedAt,
      drift: instance.drift,
      attempt: row?.attempt ?? executor.creating.get(instance.id)?.attempt,
      exit: instance.state === 'exited' ? describeExit(instance.exitCode) : undefined,
    });
  }

  for (const [id, creating] of new Map([...creatingBefore, ...executor.creating])) {
    if (listed.has(id) || executor.stopping.has(id) || executor.startErrors.has(id) || executor.cancelled.has(id)) continue;
    instances.push({ id, release: creating.releaseId, state: 'running', health: 'starting', routed: false, startedAt: creating.startedAt, gateSince: creating.startedAt, attempt: creating.attempt });
  }
  for (const [id, failed] of executor.startErrors) {
    if (listed.has(id)) continue;
    instances.push({ id, release: failed.releaseId, state: 'exited', health: 'starting', routed: false, startedAt: failed.at, attempt: failed.attempt, startError: failed.error });
  }
  for (const row of rows.values()) {
    if (!LIVE_INSTANCE_STATES.includes(row.state) || row.provider !== ctx.provider.name) continue;
    if (listed.has(row.id) || creatingBefore.has(row.id) || executor.creating.has(row.id) || executor.stopping.has(row.id) || executor.startErrors.has(row.id)) continue;
    instances.push({ id: row.id, release: row.releaseId, state: 'lost', health: 'starting', routed: routed.has(row.id), startedAt: Date.parse(row.createdAt), attempt: row.attempt });
  }

  const failures: PendingFailure[] = awaitingReplacement(ctx.db, ctx.service).map(toFailure);
  const last = desiredRelease === undefined ? undefined : lastFailure(ctx.db, ctx.service, desiredRelease);
  const seen = new Set(instances.map((i) => i.id));
  const strays = routing.targets.filter((t) => !seen.has(t.id) && !executor.creating.has(t.id) && !executor.stopping.has(t.id)).map((t) => t.id);
  return { observed: { instances, failures, ...(last ? { lastFailure: toFailure(last) } : {}) }, listed, rows, strays };
}

/** How long a provider may take to list a service's instances. */
const LIST_TIMEOUT_MS = 30_000;

/** A failed instance as reconcile sees it: its reason with its last output lines, once known. */
function toFailure(row: InstanceRow): PendingFailure {
  const output = row.output && row.output.length > 0 ? `; last output: ${row.output.join(' | ')}` : '';
  return { id: row.id, release: row.releaseId, at: Date.parse(row.endedAt ?? row.updatedAt), streak: row.streak ?? 1, reason: `${row.reason ?? 'failed'}${output}` };
}

/** An exit code for people: `exit code 3`, `killed by SIGKILL (exit 137)`. */
export function describeExit(code: number | undefined): string {
  if (code === undefined) return 'exited';
  if (code > 128 && code < 160) {
    const name = Object.entries(constants.signals).find(([, n]) => n === code - 128)?.[0];
    if (name) return `killed by ${name} (exit ${code})`;
  }
  return `exit code ${code}`;
}

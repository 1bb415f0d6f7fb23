import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { backoffDelay, failureStreak } from '../../src/core/backoff.js';
import { phoenixDueAt } from '../../src/core/phoenix.js';
import { choosePort } from '../../src/core/ports.js';
import { reconcile, type Actions, type DesiredService, type ObservedInstance, type PendingFailure } from '../../src/core/reconcile.js';

const backoff = { initial: 1000, max: 300_000, reset: 600_000 };

const desired = (over: Partial<DesiredService> = {}): DesiredService => ({
  release: 2,
  strategy: 'rolling',
  limits: { replicas: 3, maxSurge: 1, maxUnavailable: 0 },
  rollout: undefined,
  deployTimeout: 60_000,
  drainTimeout: 30_000,
  guard: { phoenix: { maxAge: undefined, jitter: 0.1 }, drift: 'replace', backoff, gateTimeout: 60_000 },
  ...over,
});
const rollout = (over: Partial<DesiredService> = {}) => desired({ rollout: { startedAt: 0 }, ...over });

/** An instance; the digits in its id are its start time. Default: release 2, running, healthy, routed. */
const inst = (id: string, over: Partial<ObservedInstance> = {}): ObservedInstance => ({
  id,
  release: 2,
  state: 'running',
  health: 'healthy',
  healthyAt: 0,
  routed: true,
  startedAt: Number(id.replace(/\D/g, '')) || 0,
  ...over,
});
const fleet = (...ids: string[]) => ids.map((id) => inst(id));

/** The parts of the actions a scenario states (empty lists and undefined left out). */
function summary(a: Actions): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (a.start.length) out.start = a.start.map((s) => (s.replaces ? `${s.replaces}@${s.attempt}` : `fresh@${s.attempt}`));
  if (a.route.length) out.route = a.route;
  if (a.unroute.length) out.unroute = a.unroute;
  if (a.stop.length) out.stop = a.stop.map((s) => `${s.id}:${s.outcome}${s.failure ? `:${s.failure.streak}${s.failure.awaiting ? '' : ':no-wait'}` : ''}`);
  if (a.drop.length) out.drop = a.drop;
  if (a.deployFailed) out.deployFailed = a.deployFailed.reason;
  if (a.degraded) out.degraded = a.degraded.reason;
  if (a.converged) out.converged = true;
  return out;
}

interface Scenario {
  name: string;
  desired?: DesiredService;
  instances: ObservedInstance[];
  failures?: PendingFailure[];
  now?: number;
  expect: Record<string, unknown>;
}

const run = (s: Scenario) => reconcile(s.desired ?? desired(), { instances: s.instances, failures: s.failures ?? [] }, { now: s.now ?? 1000 });

const scenarios: Record<string, Scenario[]> = {
  healthy: [
    { name: 'a whole fleet needs nothing', instances: fleet('a1', 'a2', 'a3'), expect: { converged: true } },
    { name: 'an empty desired state stops everything it routes, oldest first', desired: desired({ release: undefined }), instances: fleet('a1', 'a2'), expect: { unroute: ['a1', 'a2'] } },
  ],
  starting: [
    { name: 'a missing instance is started at once', instances: fleet('a1', 'a2'), expect: { start: ['fresh@0'] } },
    { name: 'a scale-up starts every missing instance at once, touching none', desired: desired({ limits: { replicas: 10, maxSurge: 1, maxUnavailable: 0 } }), instances: fleet('a1', 'a2', 'a3'), expect: { start: Array(7).fill('fresh@0') } },
    { name: 'one in its gate is waited for', instances: [...fleet('a1', 'a2'), inst('a5', { health: 'starting', routed: false, healthyAt: undefined })], expect: {} },
    { name: 'one the guard started that outlasts its gate timeout failed', now: 70_000, instances: [...fleet('a1', 'a2'), inst('a5', { health: 'starting', routed: false, healthyAt: undefined, gateSince: 5 })], expect: { stop: ['a5:failed:1'], start: ['a5@1'] } },
  ],
  ready: [{ name: 'a healthy new instance gets traffic', instances: [...fleet('a1', 'a2'), inst('a5', { routed: false })], expect: { route: ['a5'] } }],
  crashed: [
    { name: 'a crashed instance is removed and replaced at once (its first failure)', instances: [...fleet('a1', 'a3'), inst('a2', { state: 'exited', exit: 'killed by SIGKILL' })], expect: { stop: ['a2:crashed:1'], start: ['a2@1'] } },
    { name: 'every instance crashed: every place is filled at once', instances: ['a1', 'a2', 'a3'].map((id) => inst(id, { state: 'exited' })), expect: { stop: ['a1:crashed:1', 'a2:crashed:1', 'a3:crashed:1'], start: ['a1@1', 'a2@1', 'a3@1'] } },
    { name: 'a replacement that crashed young waits out its back-off', instances: [...fleet('a1', 'a3'), inst('a2', { state: 'exited', attempt: 1, healthyAt: 900 })], expect: { stop: ['a2:crashed:2'], degraded: 'crash loop: 2 failures in a row; the last: exited' } },
    { name: 'one that was healthy for the reset period starts a fresh run', now: 700_000, instances: [...fleet('a1', 'a3'), inst('a2', { state: 'exited', attempt: 5, healthyAt: 50_000 })], expect: { stop: ['a2:crashed:1'], start: ['a2@1'] } },
    { name: 'a failure is replaced once its back-off is over (4 in a row: 4 s)', now: 8000, instances: fleet('a1', 'a3'), failures: [{ id: 'a2', release: 2, at: 4000, streak: 4, reason: 'exit code 3' }], expect: { start: ['a2@4'], degraded: 'crash loop: 4 failures in a row; the last: exit code 3' } },
    { name: 'and not before', now: 7999, instances: fleet('a1', 'a3'), failures: [{ id: 'a2', release: 2, at: 4000, streak: 4, reason: 'exit code 3' }], expect: { degraded: 'crash loop: 4 failures in a row; the last: exit code 3' } },
    { name: 'a scale-down drops the places it no longer needs', desired: desired({ limits: { replicas: 2, maxSurge: 1, maxUnavailable: 0 } }), instances: fleet('a1', 'a3'), failures: [{ id: 'a2', release: 2, at: 900, streak: 3, reason: 'exit code 3' }], expect: { drop: ['a2'] } },
    {
      name: 'blue-green: a second crash is replaced while the first one\'s replacement still starts',
      desired: desired({ strategy: 'blue-green', limits: { replicas: 3, maxSurge: 3, maxUnavailable: 0 } }),
      instances: [inst('a1'), inst('a5', { health: 'starting', routed: false, healthyAt: undefined, attempt: 1 }), inst('a2', { state: 'exited' })],
      expect: { stop: ['a2:crashed:1'], start: ['a2@1'] },
    },
    { name: 'failures of another release are dropped', instances: fleet('a1', 'a2', 'a3'), failures: [{ id: 'b9', release: 1, at: 0, streak: 2, reason: 'x' }], expect: { drop: ['b9'] } },
  ],
  lost: [{ name: 'a lost instance is recorded and replaced', instances: [...fleet('a1', 'a3'), inst('a2', { state: 'lost' })], expect: { stop: ['a2:lost:1'], start: ['a2@1'] } }],
  unhealthy: [
    { name: 'a serving instance that turns unhealthy leaves the router at once and is replaced', instances: [...fleet('a1', 'a3'), inst('a2', { health: 'unhealthy' })], expect: { stop: ['a2:failed:1'], start: ['a2@1'] } },
    {
      name: 'when every instance is unhealthy they serve on until replacements are healthy',
      instances: ['a1', 'a2', 'a3'].map((id) => inst(id, { health: 'unhealthy' })),
      expect: { start: ['fresh@0'] },
    },
  ],
  failed: [{ name: 'a replacement that fails its gate is a failure of its lineage', instances: [...fleet('a1', 'a3'), inst('a2', { health: 'unhealthy', healthyAt: undefined, routed: false, attempt: 1 })], expect: { stop: ['a2:failed:2'], degraded: 'crash loop: 2 failures in a row; the last: failed its health gate' } }],
  drifted: [
    { name: 'a drifted instance is replaced surge-first: it serves until its replacement does', instances: [...fleet('a1', 'a3'), inst('a2', { drift: ['docker exec: sh'] })], expect: { start: ['fresh@0'] } },
    { name: 'once the replacement is healthy the drifted one leaves', instances: [...fleet('a1', 'a3'), inst('a2', { drift: ['docker exec: sh'] }), inst('a7', { routed: false })], expect: { route: ['a7'], unroute: ['a2'] } },
    { name: 'with drift: report it is kept, and reported', desired: desired({ guard: { ...desired().guard, drift: 'report' } }), instances: [...fleet('a1', 'a3'), inst('a2', { drift: ['nsenter'] })], expect: { converged: true } },
  ],
  tooOld: [
    { name: 'an instance past its max age is replaced surge-first', now: 100_000, desired: desired({ guard: { ...desired().guard, phoenix: { maxAge: 50_000, jitter: 0 } } }), instances: [inst('a1'), inst('a2', { startedAt: 99_000 }), inst('a3', { startedAt: 99_000 })], expect: { start: ['fresh@0'] } },
    { name: 'several due at once: only as many as the surge allows at a time', now: 100_000, desired: desired({ limits: { replicas: 4, maxSurge: 2, maxUnavailable: 0 }, guard: { ...desired().guard, phoenix: { maxAge: 50_000, jitter: 0 } } }), instances: fleet('a1', 'a2', 'a3', 'a4'), expect: { start: ['fresh@0', 'fresh@0'] } },
  ],
  old: [
    { name: 'a new release starts one surge instance first, touching no old one', desired: rollout(), instances: ['a1', 'a2', 'a3'].map((id) => inst(id, { release: 1 })), expect: { start: ['fresh@0'] } },
    { name: 'a healthy new one gets traffic, the oldest old one leaves, and the next new one starts at once', desired: rollout(), instances: [...['a1', 'a2', 'a3'].map((id) => inst(id, { release: 1 })), inst('b4', { routed: false })], expect: { route: ['b4'], unroute: ['a1'], start: ['fresh@0'] } },
  ],
  draining: [
    { name: 'the next new instance starts while the one it replaced still drains', desired: rollout(), instances: [inst('a1', { release: 1, routed: false, unroutedAt: 900, inflight: 2 }), ...['a2', 'a3'].map((id) => inst(id, { release: 1 })), inst('b4')], expect: { start: ['fresh@0'] } },
    { name: 'a draining instance stops when nothing is in flight', desired: rollout(), instances: [inst('a1', { release: 1, routed: false, unroutedAt: 900, inflight: 0 }), ...['a2', 'a3'].map((id) => inst(id, { release: 1 })), inst('b4'), inst('b5', { health: 'starting', routed: false })], expect: { stop: ['a1:stopped'] } },
    { name: 'or when the drain timeout passed', now: 31_000, desired: rollout(), instances: [inst('a1', { release: 1, routed: false, unroutedAt: 900, inflight: 2 }), ...['a2', 'a3'].map((id) => inst(id, { release: 1 })), inst('b4'), inst('b5', { health: 'starting', routed: false })], expect: { stop: ['a1:stopped'] } },
  ],
  unmanaged: [{ name: 'an unmanaged instance is only reported', instances: [...fleet('a1', 'a2', 'a3'), inst('x9', { release: undefined })], expect: { converged: true } }],
  deploy: [
    { name: 'a new instance that fails its gate fails the deploy: new ones stop, old ones serve on', desired: rollout(), instances: [...['a1', 'a2', 'a3'].map((id) => inst(id, { release: 1 })), inst('b4', { health: 'unhealthy', routed: false, healthyAt: undefined })], expect: { stop: ['b4:failed'], deployFailed: '1 new instance(s) failed the health check' } },
    { name: 'a new instance that exits fails it (no crash loop)', desired: rollout(), instances: [...['a1', 'a2', 'a3'].map((id) => inst(id, { release: 1 })), inst('b4', { state: 'exited', routed: false, exit: 'exit code 1' })], expect: { stop: ['b4:crashed'], deployFailed: '1 new instance(s) exited (exit code 1)' } },
    { name: 'a provider that cannot start one fails it with the provider\'s reason', desired: rollout(), instances: [...['a1', 'a2', 'a3'].map((id) => inst(id, { release: 1 })), inst('b4', { state: 'exited', routed: false, startError: 'port is already allocated' })], expect: { stop: ['b4:crashed'], deployFailed: 'the deploy stopped: port is already allocated' } },
    { name: 'a gate that outlasts the deadline fails it', now: 61_000, desired: rollout(), instances: [...['a1', 'a2', 'a3'].map((id) => inst(id, { release: 1 })), inst('b4', { health: 'starting', routed: false })], expect: { stop: ['b4:failed'], deployFailed: 'new instances were not healthy within 60s' } },
  ],
};

describe('reconcile: one scenario table per bucket', () => {
  for (const [bucket, table] of Object.entries(scenarios)) {
    describe(bucket, () => {
      for (const scenario of table) it(scenario.name, () => assert.deepEqual(summary(run(scenario)), scenario.expect));
    });
  }

  it('names every instance in exactly one bucket', () => {
    const all = Object.values(scenarios).flat();
    for (const s of all) {
      const ids = Object.values(run(s).buckets).flat().sort();
      assert.deepEqual(ids, s.instances.map((i) => i.id).sort(), s.name);
    }
  });

  it('says when it wants to run again: back-off, drain and phoenix deadlines', () => {
    const failure: PendingFailure = { id: 'a2', release: 2, at: 4000, streak: 3, reason: 'x' };
    assert.equal(reconcile(desired(), { instances: fleet('a1', 'a3'), failures: [failure] }, { now: 5000 }).wakeAt, 6000);
    const drainingOne = [inst('a1', { release: 1, routed: false, unroutedAt: 900, inflight: 2 }), ...fleet('b2', 'b3', 'b4')];
    assert.equal(reconcile(desired(), { instances: drainingOne, failures: [] }, { now: 1000 }).wakeAt, 30_900);
    const old = desired({ guard: { ...desired().guard, phoenix: { maxAge: 50_000, jitter: 0 } } });
    assert.equal(reconcile(old, { instances: fleet('a1', 'a2', 'a3'), failures: [] }, { now: 1000 }).wakeAt, 50_001);
  });
});

describe('guard decisions', () => {
  it('back-off: none for the first failure, then 1s doubling to the cap', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 30].map((n) => backoffDelay(n, backoff)), [0, 1000, 2000, 4000, 8000, 300_000]);
    assert.equal(failureStreak({ attempt: 3, healthyAt: 0 }, 599_999, backoff), 4);
    assert.equal(failureStreak({ attempt: 3, healthyAt: 0 }, 600_000, backoff), 1);
    assert.equal(failureStreak({ attempt: undefined }, 5, backoff), 1);
  });

  it('phoenix: each instance due within ±jitter of maxAge, spread over it, the same for the same id', () => {
    const policy = { maxAge: 100_000, jitter: 0.1 };
    const due = Array.from({ length: 500 }, (_, i) => phoenixDueAt({ id: `web-r1-${i.toString(16).padStart(6, '0')}`, startedAt: 0 }, policy)!);
    assert.ok(due.every((d) => d >= 90_000 && d <= 110_000));
    assert.ok(Math.max(...due) - Math.min(...due) > 15_000, 'spread over most of the window');
    assert.equal(phoenixDueAt({ id: 'web-r1-000001', startedAt: 0 }, policy), due[1]);
    assert.equal(phoenixDueAt({ id: 'x', startedAt: 0 }, { maxAge: undefined, jitter: 0.1 }), undefined);
  });

  it('ports: a free one from the range, outside the kernel\'s ephemeral range', () => {
    assert.equal(choosePort(new Set([20_000, 20_001]), 0), 20_002);
    assert.equal(choosePort(new Set(), 0.999_999_99), 32_767);
    assert.equal(choosePort(new Set([5, 6]), 0, { from: 5, to: 6 }), undefined);
  });
});

/** A world for the properties: actions take effect at once; time moves 1 s a tick. */
interface World {
  instances: ObservedInstance[];
  failures: PendingFailure[];
  next: number;
  now: number;
}

type Fault = { kind: 'crash' | 'hang' | 'drift' | 'lose'; pick: number };

/** Applies one tick's actions to the world; new instances pass their gate `gateTicks` ticks after start. */
function apply(world: World, actions: Actions, d: DesiredService): void {
  const stopped = new Set(actions.stop.map((s) => s.id));
  for (const order of actions.stop) {
    if (order.failure?.awaiting) world.failures.push({ id: order.id, release: d.release!, at: world.now, streak: order.failure.streak, reason: order.reason });
  }
  const replaced = new Set(actions.start.map((s) => s.replaces).filter(Boolean));
  world.failures = world.failures.filter((f) => !replaced.has(f.id) && !actions.drop.includes(f.id));
  world.instances = world.instances
    .filter((i) => !stopped.has(i.id))
    .map((i) => (actions.route.includes(i.id) ? { ...i, routed: true } : actions.unroute.includes(i.id) ? { ...i, routed: false, unroutedAt: world.now, inflight: 0 } : i));
  for (const start of actions.start) {
    world.instances.push({ id: `n${world.next++}`, release: d.release, state: 'running', health: 'starting', routed: false, startedAt: world.now, gateSince: world.now, attempt: start.attempt });
  }
}

function tick(world: World): void {
  world.now += 1000;
  world.instances = world.instances.map((i) => (i.health === 'starting' && i.state === 'running' && world.now - i.startedAt >= 1000 ? { ...i, health: 'healthy', healthyAt: world.now } : i));
}

function injure(world: World, fault: Fault): void {
  const live = world.instances.filter((i) => i.state === 'running');
  if (live.length === 0) return;
  const target = live[fault.pick % live.length]!;
  const changed: Partial<ObservedInstance> =
    fault.kind === 'crash' ? { state: 'exited', exit: 'killed' } : fault.kind === 'lose' ? { state: 'lost' } : fault.kind === 'hang' ? { health: 'unhealthy' } : { drift: ['docker exec'] };
  world.instances = world.instances.map((i) => (i === target ? { ...i, ...changed } : i));
}

const routedHealthy = (world: World, d: DesiredService) => world.instances.filter((i) => i.routed && i.state === 'running' && i.health === 'healthy' && i.release === d.release).length;

describe('reconcile: properties of a fleet it drives', () => {
  const arbitraryLimits = fc
    .record({ replicas: fc.integer({ min: 1, max: 10 }), maxSurge: fc.integer({ min: 0, max: 3 }), maxUnavailable: fc.integer({ min: 0, max: 3 }) })
    .filter((l) => l.maxSurge + l.maxUnavailable >= 1);
  const faults = fc.array(fc.array(fc.record({ kind: fc.constantFrom<Fault['kind']>('crash', 'hang', 'drift', 'lose'), pick: fc.nat(20) }), { maxLength: 3 }), { maxLength: 30 });

  it('with any mix of faults, the fleet converges to replicas healthy instances of the desired release', () => {
    fc.assert(
      fc.property(arbitraryLimits, fc.constantFrom('rolling', 'blue-green'), faults, fc.boolean(), (limits, strategy, faultsByTick, phoenix) => {
        const d = desired({ strategy, limits, guard: { ...desired().guard, backoff: { initial: 1000, max: 8000, reset: 600_000 }, phoenix: { maxAge: phoenix ? 20_000 : undefined, jitter: 0.1 } } });
        const world: World = { instances: Array.from({ length: limits.replicas }, (_, i) => inst(`a${i}`)), failures: [], next: 0, now: 0 };
        let converged = false;
        for (let t = 0; t < 400 && !converged; t++) {
          tick(world);
          for (const fault of faultsByTick[t] ?? []) injure(world, fault);
          const actions = reconcile(d, world, { now: world.now });
          assert.equal(actions.deployFailed, undefined);
          converged = actions.converged && t >= faultsByTick.length;
          if (phoenix) converged = false; // a phoenix fleet never stops recycling: check its shape instead
          apply(world, actions, d);
          if (phoenix && t > faultsByTick.length + 60 && routedHealthy(world, d) >= limits.replicas) break;
        }
        if (!phoenix) assert.ok(converged, 'converged');
        assert.ok(routedHealthy(world, d) >= limits.replicas, `healthy ${routedHealthy(world, d)} of ${limits.replicas}`);
        if (!phoenix) assert.equal(world.instances.length, limits.replicas);
      }),
      { numRuns: 300 },
    );
  });

  it('the guard\'s own replacements never take more than maxUnavailable out of service', () => {
    fc.assert(
      fc.property(arbitraryLimits, faults, (limits, faultsByTick) => {
        // Drift and age are the guard's reasons to take a healthy instance out; crashes and hangs are not its doing.
        const d = desired({ limits, guard: { ...desired().guard, phoenix: { maxAge: 15_000, jitter: 0.2 } } });
        const world: World = { instances: Array.from({ length: limits.replicas }, (_, i) => inst(`a${i}`)), failures: [], next: 0, now: 0 };
        for (let t = 0; t < 120; t++) {
          tick(world);
          for (const fault of faultsByTick[t] ?? []) if (fault.kind === 'drift') injure(world, fault);
          const before = routedHealthy(world, d);
          const actions = reconcile(d, world, { now: world.now });
          apply(world, actions, d);
          const after = routedHealthy(world, d);
          assert.ok(after >= Math.min(before, limits.replicas) - limits.maxUnavailable, `tick ${t}: serving went ${before} → ${after} (maxUnavailable ${limits.maxUnavailable})`);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('starts are bounded for a release whose every instance dies at once', () => {
    const d = desired({ guard: { ...desired().guard, backoff: { initial: 1000, max: 300_000, reset: 600_000 } } });
    const world: World = { instances: fleet('a1', 'a2', 'a3'), failures: [], next: 0, now: 0 };
    let starts = 0;
    for (let t = 0; t < 60; t++) {
      tick(world);
      world.instances = world.instances.map((i) => (i.state === 'running' ? { ...i, state: 'exited' as const } : i)); // nothing survives a second
      const actions = reconcile(d, world, { now: world.now });
      starts += actions.start.length;
      apply(world, actions, d);
    }
    // Per place: a start after 0, 1, 2, 4, 8, 16 s of back-off (plus a second to die each time) fit in 60 s.
    assert.ok(starts <= 3 * 7, `${starts} starts in 60 s`);
    assert.ok(starts >= 3 * 5, `${starts} starts in 60 s: it must keep trying`);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { reconcile, type Actions, type DesiredService, type ObservedInstance } from '../../src/core/reconcile.js';

const desired = (over: Partial<DesiredService> = {}): DesiredService => ({
  release: 2,
  strategy: 'rolling',
  limits: { replicas: 3, maxSurge: 1, maxUnavailable: 0 },
  deployStartedAt: 0,
  deployTimeout: 60_000,
  drainTimeout: 30_000,
  ...over,
});

const inst = (id: string, over: Partial<ObservedInstance> = {}): ObservedInstance => ({
  id,
  release: 1,
  state: 'running',
  health: 'healthy',
  routed: true,
  startedAt: Number(id.replace(/\D/g, '')) || 0,
  ...over,
});

const summary = (a: Actions) => ({ start: a.start, route: a.route, unroute: a.unroute, stop: a.stop, failed: a.failed?.reason, converged: a.converged });

describe('reconcile: scenarios', () => {
  it('a steady fleet needs nothing', () => {
    const fleet = ['a1', 'a2', 'a3'].map((id) => inst(id, { release: 2 }));
    assert.deepEqual(summary(reconcile(desired({ deployStartedAt: undefined }), fleet, 1000)), { start: 0, route: [], unroute: [], stop: [], failed: undefined, converged: true });
  });

  it('a new release starts one surge instance first, and touches no old one', () => {
    const fleet = ['a1', 'a2', 'a3'].map((id) => inst(id));
    assert.deepEqual(summary(reconcile(desired(), fleet, 1000)), { start: 1, route: [], unroute: [], stop: [], failed: undefined, converged: false });
  });

  it('a new instance still in its gate is waited for', () => {
    const fleet = [...['a1', 'a2', 'a3'].map((id) => inst(id)), inst('b4', { release: 2, health: 'starting', routed: false })];
    assert.deepEqual(summary(reconcile(desired(), fleet, 1000)), { start: 0, route: [], unroute: [], stop: [], failed: undefined, converged: false });
  });

  it('a healthy new instance gets traffic and the oldest old one stops getting it', () => {
    const fleet = [...['a1', 'a2', 'a3'].map((id) => inst(id)), inst('b4', { release: 2, routed: false })];
    assert.deepEqual(summary(reconcile(desired(), fleet, 1000)), { start: 0, route: ['b4'], unroute: ['a1'], stop: [], failed: undefined, converged: false });
  });

  it('a draining instance stops when nothing is in flight, or when the drain timeout passes', () => {
    const busy = inst('a1', { routed: false, unroutedAt: 1000, inflight: 2 });
    const rest = [inst('a2'), inst('a3'), inst('b4', { release: 2 })];
    assert.deepEqual(reconcile(desired(), [busy, ...rest], 5000).stop, []);
    assert.deepEqual(reconcile(desired(), [busy, ...rest], 31_000).stop, ['a1']);
    assert.deepEqual(reconcile(desired(), [{ ...busy, inflight: 0 }, ...rest], 5000).stop, ['a1']);
  });

  it('a new instance that fails its gate fails the deploy: the new ones stop, the old ones keep serving', () => {
    const fleet = [...['a1', 'a2', 'a3'].map((id) => inst(id)), inst('b4', { release: 2, health: 'unhealthy', routed: false })];
    const actions = reconcile(desired(), fleet, 1000);
    assert.deepEqual(summary(actions), { start: 0, route: [], unroute: [], stop: ['b4'], failed: '1 new instance(s) failed the health check', converged: false });
  });

  it('a new instance that exits during the deploy fails it (no crash loop)', () => {
    const fleet = [...['a1', 'a2', 'a3'].map((id) => inst(id)), inst('b4', { release: 2, state: 'exited', routed: false })];
    const actions = reconcile(desired(), fleet, 1000);
    assert.deepEqual(summary(actions), { start: 0, route: [], unroute: [], stop: ['b4'], failed: '1 new instance(s) exited', converged: false });
  });

  it('a gate that outlasts the deploy deadline fails the deploy', () => {
    const fleet = [...['a1', 'a2', 'a3'].map((id) => inst(id)), inst('b4', { release: 2, health: 'starting', routed: false })];
    assert.equal(reconcile(desired(), fleet, 59_000).failed, undefined);
    assert.deepEqual(reconcile(desired(), fleet, 61_000).failed, { reason: 'new instances were not healthy within 60s', instances: ['b4'] });
  });

  it('a crashed instance is removed and replaced; an unmanaged one is only reported', () => {
    const fleet = [inst('b1', { release: 2 }), inst('b2', { release: 2, state: 'exited', routed: false }), inst('b3', { release: 2 }), inst('x9', { release: undefined })];
    const actions = reconcile(desired({ deployStartedAt: undefined }), fleet, 1000);
    assert.deepEqual(summary(actions), { start: 1, route: [], unroute: [], stop: ['b2'], failed: undefined, converged: false });
    assert.deepEqual(actions.buckets.unmanaged, ['x9']);
    assert.deepEqual(actions.buckets.crashed, ['b2']);
  });

  it('a serving instance that turns unhealthy after the deploy is unrouted and replaced', () => {
    const fleet = [inst('b1', { release: 2 }), inst('b2', { release: 2, health: 'unhealthy' }), inst('b3', { release: 2 })];
    const actions = reconcile(desired({ deployStartedAt: undefined }), fleet, 1000);
    assert.deepEqual(summary(actions), { start: 1, route: [], unroute: ['b2'], stop: [], failed: undefined, converged: false });
  });
});

/** A tiny world: actions take effect at once, new instances pass their gate one tick later. */
function simulate(old: number, d: DesiredService, ticks = 500) {
  let fleet: ObservedInstance[] = Array.from({ length: old }, (_, i) => inst(`a${i}`));
  let next = 1000;
  let minServing = old;
  let maxRunning = old;
  for (let now = 1; now < ticks; now++) {
    fleet = fleet.map((i) => (i.health === 'starting' ? { ...i, health: 'healthy' } : i));
    const actions = reconcile(d, fleet, now * 1000);
    if (actions.converged) return { fleet, minServing, maxRunning, ticks: now };
    assert.equal(actions.failed, undefined);
    const stop = new Set(actions.stop);
    fleet = fleet
      .filter((i) => !stop.has(i.id))
      .map((i) => (actions.route.includes(i.id) ? { ...i, routed: true } : actions.unroute.includes(i.id) ? { ...i, routed: false, unroutedAt: now * 1000, inflight: 0 } : i));
    for (let k = 0; k < actions.start; k++) fleet.push(inst(`b${next++}`, { release: d.release, health: 'starting', routed: false, startedAt: now }));
    minServing = Math.min(minServing, fleet.filter((i) => i.routed).length);
    maxRunning = Math.max(maxRunning, fleet.length);
  }
  throw new Error(`did not converge in ${ticks} ticks`);
}

describe('reconcile: a fleet driven by it converges within its limits', () => {
  it('for any fleet size, surge and unavailability, rolling or blue-green', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 12 }),
        fc.record({ replicas: fc.integer({ min: 0, max: 12 }), maxSurge: fc.integer({ min: 0, max: 4 }), maxUnavailable: fc.integer({ min: 0, max: 4 }) }).filter((l) => l.maxSurge + l.maxUnavailable >= 1),
        fc.constantFrom('rolling', 'blue-green'),
        (old, limits, strategy) => {
          const d = desired({ strategy, limits });
          const result = simulate(old, d);
          assert.equal(result.fleet.length, limits.replicas);
          assert.ok(result.fleet.every((i) => i.release === 2 && i.routed));
          assert.ok(result.minServing >= Math.min(old, limits.replicas) - (strategy === 'rolling' ? limits.maxUnavailable : 0), `serving dipped to ${result.minServing}`);
          const cap = strategy === 'rolling' ? limits.replicas + limits.maxSurge : old + limits.replicas;
          assert.ok(result.maxRunning <= Math.max(old, cap), `running rose to ${result.maxRunning}`);
        },
      ),
      { numRuns: 400 },
    );
  });
});

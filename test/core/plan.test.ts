import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseCount, resolveCount } from '../../src/core/count.js';
import { planRollout } from '../../src/core/plan.js';
import type { RolloutLimits } from '../../src/core/rollout.js';
import { strategyFor } from '../../src/core/strategies/index.js';

/** A plan as short lines: `start 1`, `shift +1 -1`, … with the serving/running counts after each. */
function lines(strategy: string, old: number, limits: RolloutLimits): string[] {
  return planRollout(strategy, old, limits).steps.map(({ step, serving, running }) => {
    const what = step.kind === 'shift' ? `shift +${step.route} -${step.unroute}` : `${step.kind} ${step.count}`;
    return `${what} (${serving}/${running})`;
  });
}

describe('planRollout: scenarios', () => {
  it('rolling 3, surge 1: one at a time, old stopped only after its replacement serves', () => {
    assert.deepEqual(lines('rolling', 3, { replicas: 3, maxSurge: 1, maxUnavailable: 0 }), [
      'start 1 (3/4)', 'wait-healthy 1 (3/4)', 'shift +1 -1 (3/4)', 'drain 1 (3/4)', 'stop 1 (3/3)',
      'start 1 (3/4)', 'wait-healthy 1 (3/4)', 'shift +1 -1 (3/4)', 'drain 1 (3/4)', 'stop 1 (3/3)',
      'start 1 (3/4)', 'wait-healthy 1 (3/4)', 'shift +1 -1 (3/4)', 'drain 1 (3/4)', 'stop 1 (3/3)',
    ]);
  });

  it('rolling 4, surge 0, unavailable 1: retire one, then replace it', () => {
    const plan = lines('rolling', 4, { replicas: 4, maxSurge: 0, maxUnavailable: 1 });
    assert.deepEqual(plan.slice(0, 6), ['shift +0 -1 (3/4)', 'drain 1 (3/4)', 'stop 1 (3/3)', 'start 1 (3/4)', 'wait-healthy 1 (3/4)', 'shift +1 -0 (4/4)']);
    assert.equal(plan.length, 4 * 6);
  });

  it('rolling 4, surge 2, unavailable 2: two batches of four', () => {
    assert.deepEqual(lines('rolling', 4, { replicas: 4, maxSurge: 2, maxUnavailable: 2 }), [
      'shift +0 -2 (2/4)', 'drain 2 (2/4)', 'stop 2 (2/2)',
      'start 4 (2/6)', 'wait-healthy 4 (2/6)', 'shift +4 -2 (4/6)', 'drain 2 (4/6)', 'stop 2 (4/4)',
    ]);
  });

  it('a first deploy starts the whole fleet at once: with nothing old, the surge is never reached', () => {
    assert.deepEqual(lines('rolling', 0, { replicas: 3, maxSurge: 1, maxUnavailable: 0 }), ['start 3 (0/3)', 'wait-healthy 3 (0/3)', 'shift +3 -0 (3/3)']);
    assert.deepEqual(lines('blue-green', 0, { replicas: 3, maxSurge: 1, maxUnavailable: 0 }), ['start 3 (0/3)', 'wait-healthy 3 (0/3)', 'shift +3 -0 (3/3)']);
  });

  it('a scale-down retires the surplus first', () => {
    assert.deepEqual(lines('rolling', 5, { replicas: 2, maxSurge: 1, maxUnavailable: 0 }).slice(0, 3), ['shift +0 -3 (2/5)', 'drain 3 (2/5)', 'stop 3 (2/2)']);
  });

  it('blue-green: the whole new fleet, then traffic at once', () => {
    assert.deepEqual(lines('blue-green', 3, { replicas: 3, maxSurge: 1, maxUnavailable: 0 }), [
      'start 3 (3/6)', 'wait-healthy 3 (3/6)', 'shift +3 -3 (3/6)', 'drain 3 (3/6)', 'stop 3 (3/3)',
    ]);
  });

  it('an unknown strategy names itself', () => {
    assert.throws(() => strategyFor('canary-ish'), /unknown strategy: canary-ish \(expected one of rolling, blue-green\)/);
  });
});

describe('planRollout: properties', () => {
  const limits = fc
    .record({ replicas: fc.integer({ min: 0, max: 40 }), maxSurge: fc.integer({ min: 0, max: 45 }), maxUnavailable: fc.integer({ min: 0, max: 45 }) })
    .filter((l) => l.maxSurge + l.maxUnavailable >= 1);
  const old = fc.integer({ min: 0, max: 40 });

  it('rolling ends with the new fleet, within the surge and the unavailability budget', () => {
    fc.assert(
      fc.property(old, limits, (o, l) => {
        const plan = planRollout('rolling', o, l);
        const last = plan.steps.at(-1)?.after ?? plan.from;
        assert.deepEqual(last, { old: 0, starting: 0, ready: 0, serving: l.replicas, draining: 0 });
        assert.ok(plan.maxRunning <= Math.max(o, l.replicas + l.maxSurge), `running ${plan.maxRunning} > max(${o}, ${l.replicas}+${l.maxSurge})`);
        assert.ok(plan.minServing >= Math.min(o, l.replicas) - l.maxUnavailable, `serving ${plan.minServing} < min(${o}, ${l.replicas})-${l.maxUnavailable}`);
      }),
      { numRuns: 3000 },
    );
  });

  it('with maxUnavailable 0, serving never drops below the fleet it started with (capped at replicas)', () => {
    fc.assert(
      fc.property(old, limits.filter((l) => l.maxSurge >= 1), (o, l) => {
        for (const strategy of ['rolling', 'blue-green']) {
          const plan = planRollout(strategy, o, { ...l, maxUnavailable: 0 });
          assert.ok(plan.minServing >= Math.min(o, l.replicas), `${strategy}: serving ${plan.minServing} < ${Math.min(o, l.replicas)}`);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('old instances are stopped only after they were drained, and drained only after being unrouted', () => {
    fc.assert(
      fc.property(old, limits, fc.constantFrom('rolling', 'blue-green'), (o, l, strategy) => {
        let unrouted = 0;
        let drained = 0;
        for (const { step } of planRollout(strategy, o, l).steps) {
          if (step.kind === 'shift') unrouted += step.unroute;
          if (step.kind === 'drain') {
            assert.ok(step.count <= unrouted - drained);
            drained += step.count;
          }
          if (step.kind === 'stop') assert.ok(step.count <= drained);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('new instances get traffic only after their health gate', () => {
    fc.assert(
      fc.property(old, limits, fc.constantFrom('rolling', 'blue-green'), (o, l, strategy) => {
        let healthy = 0;
        let routed = 0;
        for (const { step } of planRollout(strategy, o, l).steps) {
          if (step.kind === 'wait-healthy') healthy += step.count;
          if (step.kind === 'shift') routed += step.route;
          assert.ok(routed <= healthy);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('counts', () => {
  it('parses integers and percentages, naming what it got otherwise', () => {
    assert.deepEqual(parseCount(2), { kind: 'count', value: 2 });
    assert.deepEqual(parseCount('25%'), { kind: 'percent', value: 25 });
    assert.deepEqual(parseCount('many'), { error: 'expected an integer or a percentage like "25%", got "many"' });
    assert.deepEqual(parseCount(-1), { error: 'expected an integer or a percentage like "25%", got -1' });
    assert.ok('error' in parseCount('101%'));
  });

  it('rounds surge up and unavailability down, as Kubernetes does', () => {
    assert.equal(resolveCount({ kind: 'percent', value: 25 }, 10, 'up'), 3);
    assert.equal(resolveCount({ kind: 'percent', value: 25 }, 10, 'down'), 2);
    assert.equal(resolveCount({ kind: 'count', value: 4 }, 10, 'down'), 4);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { initialHealth, nextHealth, type GateSettings, type HealthState } from '../../src/health/health-gate.js';
import type { ProbeResult } from '../../src/health/probe.js';

const result = (ok: boolean, at: number): ProbeResult => ({ ok, at, ms: 1, detail: ok ? 'GET / → 200 in 1ms' : 'GET / → 500 in 1ms' });
const letter = { starting: 's', healthy: 'h', unhealthy: 'u' } as const;

/** Runs results `P` (pass) / `F` (fail), the i-th at `startedAt + i*10`, and spells the statuses after each. */
function statuses(settings: GateSettings, results: string, startedAt = 1000): string {
  let state: HealthState = initialHealth;
  let out = '';
  [...results].forEach((r, i) => {
    state = nextHealth(state, result(r === 'P', startedAt + i * 10), settings, startedAt);
    out += letter[state.status];
  });
  return out;
}

describe('nextHealth: scenarios', () => {
  const gate = (healthyThreshold: number, unhealthyThreshold: number, startPeriod = 0): GateSettings => ({ healthyThreshold, unhealthyThreshold, startPeriod });
  const table: Array<{ name: string; settings: GateSettings; results: string; expect: string }> = [
    { name: 'enough passes in a row make it healthy', settings: gate(2, 3), results: 'PP', expect: 'sh' },
    { name: 'a failure breaks a run of passes', settings: gate(2, 3), results: 'PFP', expect: 'sss' },
    { name: 'enough failures in a row make it unhealthy', settings: gate(2, 3), results: 'FFF', expect: 'ssu' },
    { name: 'a pass breaks a run of failures', settings: gate(2, 3), results: 'FFPFF', expect: 'sssss' },
    { name: 'thresholds of 1 decide on every result', settings: gate(1, 1), results: 'PFP', expect: 'huh' },
    { name: 'failures inside the start period are not counted', settings: gate(2, 2, 25), results: 'FFFFF', expect: 'ssssu' },
    { name: 'an app booting within its start period becomes healthy', settings: gate(1, 1, 100), results: 'FFFFP', expect: 'ssssh' },
    { name: 'a failure inside the start period still breaks a run of passes', settings: gate(2, 1, 100), results: 'PFP', expect: 'sss' },
    { name: 'a healthy instance is not made unhealthy inside the start period', settings: gate(1, 1, 100), results: 'PFFF', expect: 'hhhh' },
    { name: 'a healthy instance that keeps failing becomes unhealthy', settings: gate(2, 2), results: 'PPFF', expect: 'shhu' },
    { name: 'an unhealthy instance that passes again becomes healthy again', settings: gate(2, 2), results: 'FFPP', expect: 'suuh' },
    { name: 'one pass does not undo unhealthy when the threshold is higher', settings: gate(3, 1), results: 'FPPF', expect: 'uuuu' },
  ];
  for (const row of table) {
    it(row.name, () => assert.equal(statuses(row.settings, row.results), row.expect));
  }

  it('counts the start period from startedAt, by the time a probe started', () => {
    const settings = gate(1, 1, 500);
    assert.equal(nextHealth(initialHealth, result(false, 1499), settings, 1000).status, 'starting');
    assert.equal(nextHealth(initialHealth, result(false, 1500), settings, 1000).status, 'unhealthy');
  });

  it('does not change the state it is given', () => {
    const state = { status: 'starting', passes: 1, failures: 0 } as const;
    nextHealth(state, result(true, 0), gate(2, 2), 0);
    assert.deepEqual(state, { status: 'starting', passes: 1, failures: 0 });
  });
});

describe('nextHealth: properties', () => {
  const settingsArb = fc.record({ healthyThreshold: fc.integer({ min: 1, max: 5 }), unhealthyThreshold: fc.integer({ min: 1, max: 5 }), startPeriod: fc.integer({ min: 0, max: 100 }) });
  // results in any order of time, some before startedAt, some inside the start period, some after
  const resultsArb = fc.array(fc.record({ ok: fc.boolean(), at: fc.integer({ min: 0, max: 200 }) }), { maxLength: 40 });
  const startedAtArb = fc.integer({ min: 0, max: 60 });

  /** Every step of a run: the state before, the result, the state after, and the results so far. */
  function steps(settings: GateSettings, results: Array<{ ok: boolean; at: number }>, startedAt: number) {
    let state: HealthState = initialHealth;
    return results.map((r, i) => {
      const before = state;
      state = nextHealth(before, result(r.ok, r.at), settings, startedAt);
      return { before, after: state, result: r, history: results.slice(0, i + 1) };
    });
  }
  const inStartPeriod = (at: number, settings: GateSettings, startedAt: number) => at < startedAt + settings.startPeriod;

  it('never becomes healthy without healthyThreshold passes in a row', () => {
    fc.assert(
      fc.property(settingsArb, resultsArb, startedAtArb, (settings, results, startedAt) => {
        for (const { before, after, history } of steps(settings, results, startedAt)) {
          if (after.status === 'healthy' && before.status !== 'healthy') {
            const run = history.slice(-settings.healthyThreshold);
            assert.equal(run.length, settings.healthyThreshold);
            assert.ok(run.every((r) => r.ok));
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('never becomes unhealthy without unhealthyThreshold counted failures since the last pass', () => {
    fc.assert(
      fc.property(settingsArb, resultsArb, startedAtArb, (settings, results, startedAt) => {
        for (const { before, after, history } of steps(settings, results, startedAt)) {
          if (after.status === 'unhealthy' && before.status !== 'unhealthy') {
            const sinceLastPass = history.slice(history.map((r) => r.ok).lastIndexOf(true) + 1);
            const counted = sinceLastPass.filter((r) => !inStartPeriod(r.at, settings, startedAt));
            assert.ok(counted.length >= settings.unhealthyThreshold);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('a failure inside the start period never changes the status, so it never makes an instance unhealthy', () => {
    fc.assert(
      fc.property(settingsArb, resultsArb, startedAtArb, (settings, results, startedAt) => {
        for (const { before, after, result: r } of steps(settings, results, startedAt)) {
          if (!r.ok && inStartPeriod(r.at, settings, startedAt)) assert.equal(after.status, before.status);
        }
        const allInside = results.map((r) => ({ ...r, at: startedAt + (r.at % Math.max(1, settings.startPeriod)) }));
        if (settings.startPeriod > 0) assert.ok(steps(settings, allInside, startedAt).every((s) => s.after.status !== 'unhealthy'));
      }),
      { numRuns: 2000 },
    );
  });

  it('keeps one run at a time: passes and failures are never both counted', () => {
    fc.assert(
      fc.property(settingsArb, resultsArb, startedAtArb, (settings, results, startedAt) => {
        for (const { after } of steps(settings, results, startedAt)) assert.ok(after.passes === 0 || after.failures === 0);
      }),
      { numRuns: 2000 },
    );
  });
});

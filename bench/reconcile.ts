/**
 * How long reconcile takes to decide, for fleets of 1,000 and 10,000 instances: the pure
 * function alone (no I/O), in this process, on synthetic fleets in the states a loop meets.
 *
 *   node --import tsx bench/reconcile.ts [--runs N]
 *
 * Prints a markdown report to stdout.
 */
import { cpus, release } from 'node:os';
import { parseArgs } from 'node:util';
import type { DesiredService, Observed, ObservedInstance } from '../src/core/fleet.js';
import { reconcile } from '../src/core/reconcile.js';
import { markdownTable, quantile, summarise } from './lib/stats.js';

const { values } = parseArgs({ options: { runs: { type: 'string' } } });
const RUNS = Number(values.runs ?? 200);
if (!Number.isInteger(RUNS) || RUNS < 5) throw new Error(`--runs: expected a whole number of at least 5, got ${values.runs}`);

const NOW = Date.UTC(2030, 0, 1);
const desired = (replicas: number, over: Partial<DesiredService> = {}): DesiredService => ({
  release: 2,
  strategy: 'rolling',
  limits: { replicas, maxSurge: Math.ceil(replicas / 4), maxUnavailable: 0 },
  rollout: undefined,
  deployTimeout: 120_000,
  drainTimeout: 30_000,
  guard: { phoenix: { maxAge: 86_400_000, jitter: 0.1 }, drift: 'replace', backoff: { initial: 1000, max: 300_000, reset: 600_000 }, gateTimeout: 120_000 },
  ...over,
});
const instance = (i: number, over: Partial<ObservedInstance> = {}): ObservedInstance => ({
  id: `web-r2-${i.toString(16).padStart(6, '0')}`,
  release: 2,
  state: 'running',
  health: 'healthy',
  healthyAt: NOW - 3_600_000,
  routed: true,
  startedAt: NOW - 3_600_000 - i,
  drift: [],
  attempt: 0,
  ...over,
});

/** The fleets, by what the loop meets: a steady fleet, one with faults of every kind, one mid-rollout. */
function fleets(n: number): Array<[string, DesiredService, Observed]> {
  const steady = Array.from({ length: n }, (_, i) => instance(i));
  const faulty = steady.map((inst, i) =>
    i % 50 === 0 ? { ...inst, state: 'exited' as const } : i % 50 === 1 ? { ...inst, health: 'unhealthy' as const } : i % 50 === 2 ? { ...inst, drift: ['docker exec: sh'] } : i % 50 === 3 ? { ...inst, startedAt: NOW - 100 * 86_400_000 } : inst,
  );
  const rollout = steady.map((inst, i) => (i < n / 2 ? { ...inst, release: 1 } : i < n / 2 + n / 8 ? { ...inst, routed: false, health: 'starting' as const } : inst));
  const failures = Array.from({ length: n / 100 }, (_, i) => ({ id: `web-r2-f${i}`, release: 2, at: NOW - 500, streak: 2 + (i % 5), reason: 'exit code 3' }));
  return [
    ['steady: every instance healthy', desired(n), { instances: steady, failures: [] }],
    ['faults: 2% crashed, unhealthy, drifted, too old each; 1% awaiting back-off', desired(n), { instances: faulty, failures }],
    ['mid-rollout: half old, an eighth starting', desired(n, { rollout: { startedAt: NOW - 60_000 } }), { instances: rollout, failures: [] }],
  ];
}

const rows: string[][] = [];
for (const n of [1_000, 10_000]) {
  for (const [name, d, observed] of fleets(n)) {
    for (let i = 0; i < 5; i++) reconcile(d, observed, { now: NOW }); // warm up
    const samples: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t = performance.now();
      reconcile(d, observed, { now: NOW });
      samples.push(performance.now() - t);
    }
    const s = summarise(samples)!;
    rows.push([String(n), name, `${s.median.toFixed(2)} ms`, `${quantile(samples, 0.99).toFixed(2)} ms`, `${s.min.toFixed(2)} ms`]);
    process.stderr.write(`${n} ${name}: median ${s.median.toFixed(2)} ms\n`);
  }
}
const cpu = cpus();
process.stdout.write(
  [
    `### reconcile decision time, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `Command: \`node --import tsx bench/reconcile.ts --runs ${RUNS}\`. ${cpu.length} cores (${cpu[0]?.model.trim() ?? '?'}), Linux ${release()}, Node ${process.version}; ${RUNS} calls per row after 5 to warm up.`,
    '',
    markdownTable(['instances', 'fleet', 'median', 'p99', 'min'], rows),
    '',
  ].join('\n'),
);

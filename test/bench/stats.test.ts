import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { medianInterval, ratioCell, summarise } from '../../bench/lib/stats.js';

const oneTo = (n: number) => Array.from({ length: n }, (_, i) => n - i); // unsorted on purpose

describe('medianInterval (the sign test interval the benches report)', () => {
  it('picks the order statistics of the published tables', () => {
    // Ranks from the binomial table of the median's interval at 95%: n=6 → (1, 6), 10 → (2, 9), 16 → (4, 13), 20 → (6, 15), 40 → (14, 27).
    for (const [n, low, high] of [
      [6, 1, 6],
      [10, 2, 9],
      [16, 4, 13],
      [20, 6, 15],
      [40, 14, 27],
    ] as const) {
      const interval = medianInterval(oneTo(n));
      assert.deepEqual([interval?.low, interval?.high], [low, high], `n=${n}`);
      assert.ok(interval!.coverage >= 0.95, `n=${n}: coverage ${interval!.coverage}`);
    }
  });

  it('gives none where no interval reaches the confidence: below 6 samples at 95%, below 8 at 99%', () => {
    for (const n of [0, 1, 5]) assert.equal(medianInterval(oneTo(n)), undefined);
    assert.equal(medianInterval(oneTo(7), 0.99), undefined);
    assert.deepEqual(medianInterval(oneTo(8), 0.99), { low: 1, high: 8, coverage: 1 - 2 / 256 });
  });

  it('always holds the median, at the coverage asked or more', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 10, noNaN: true }), { minLength: 6, maxLength: 80 }), fc.constantFrom(0.9, 0.95, 0.99), (samples, confidence) => {
        const interval = medianInterval(samples, confidence);
        if (!interval) return samples.length < 8 && confidence === 0.99;
        const median = summarise(samples)!.median;
        return interval.low <= median && median <= interval.high && interval.coverage >= confidence;
      }),
    );
  });

  it('is written after the median in a table cell', () => {
    assert.equal(ratioCell([0.9, 0.8, 1, 0.85, 0.95, 0.9]), '0.90× (0.80–1.00)');
    assert.equal(ratioCell([0.9, 0.8]), '0.85×');
  });
});

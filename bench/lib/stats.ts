/** Small number helpers for the bench: summaries of repeated timings and how to print them. */

/** The median and the minimum of a list of samples. */
export interface Summary {
  median: number;
  min: number;
  n: number;
}

/** Summarises samples (the median of an even count is the mean of the middle two). */
export function summarise(samples: number[]): Summary | undefined {
  if (samples.length === 0) return undefined;
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, n: sorted.length };
}

/** Formats milliseconds for a table: `850 ms`, `2.41 s`. */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

/** Formats a byte count in MiB (peak RSS, image sizes). */
export function formatMiB(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(bytes < 10 * 1024 * 1024 ? 1 : 0)} MiB`;
}

/** Lays out a markdown table. */
export function markdownTable(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** The q-quantile (0..1) of samples, nearest rank (p99 of 20 samples is the largest). */
export function quantile(samples: number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** A distribution-free confidence interval of a median: two order statistics of the samples. */
export interface MedianInterval {
  low: number;
  high: number;
  /** The interval's exact coverage (at least the one asked for), e.g. 0.979 for 16 samples at 0.95. */
  coverage: number;
}

/**
 * The confidence interval of the median of `samples` from their order statistics (the sign
 * test's interval): [x(k), x(n+1-k)] for the largest k with P(Binomial(n, 1/2) < k) ≤
 * (1 - confidence) / 2. It assumes nothing of the samples' distribution, only that they are
 * independent. Undefined when no interval reaches the confidence asked (below 6 samples at
 * 95%, below 8 at 99%).
 */
export function medianInterval(samples: number[], confidence = 0.95): MedianInterval | undefined {
  const n = samples.length;
  const sorted = [...samples].sort((a, b) => a - b);
  // P(B < k) for k = 0, 1, ...: the tail each end may leave out.
  const tail = (1 - confidence) / 2;
  let term = 0.5 ** n; // P(B = 0)
  let below = 0; // P(B < k)
  let k = 0;
  while (k < n / 2 && below + term <= tail) {
    below += term;
    term = (term * (n - k)) / (k + 1);
    k++;
  }
  if (k === 0) return undefined;
  return { low: sorted[k - 1]!, high: sorted[n - k]!, coverage: 1 - 2 * below };
}

/** `0.88× (0.85–0.91)`: the median of ratios and its 95% interval (medianInterval), when there are rounds enough for one. */
export function ratioCell(ratios: number[]): string {
  const median = `${summarise(ratios)!.median.toFixed(2)}×`;
  const interval = medianInterval(ratios);
  return interval ? `${median} (${interval.low.toFixed(2)}–${interval.high.toFixed(2)})` : median;
}

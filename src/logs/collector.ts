import { reasonOf } from '../errors.js';
import type { OutputRead } from '../providers/provider.js';
import { BLOCK_LINES, type DropRecord, type LogBlock, type LogStore, type LogStream, type SourcePosition } from './log-store.js';

/** One stream of one instance's output, how to read it, and what its lines are labelled with. */
export interface LogSource {
  /** Names the stream's read position in the store: `<instance>:<stream>`. */
  key: string;
  /** Reads the stream from `position` into `buffer` (the provider's readOutput). */
  read: (position: number, buffer: Buffer) => Promise<OutputRead>;
  service: string;
  env: string;
  release: number | undefined;
  instance: string;
  stream: LogStream;
  /** The instance is gone and its provider wrote its last line: once read to the end, the stream is done. */
  ended: boolean;
}

/** How the collector bounds itself. */
export interface CollectorLimits {
  /** Unread output of one stream past this is skipped (counted as dropped), oldest first. Default 64 MiB. */
  maxBacklogBytes: number;
  /** Bytes read per stream per pass, so one loud instance never starves the others. Default 1 MiB. */
  bytesPerPass: number;
  /** Bytes read in one pass over every stream, so a pass never holds the event loop (and the API) long. Default 1 MiB (some 50 ms of inserts). */
  bytesPerPassTotal: number;
  /** A line longer than this is cut into lines of this length. Default 16 KiB. */
  maxLineBytes: number;
  /** Bytes of a backlog past `maxBacklogBytes` counted and skipped per pass. Default 32 MiB. */
  skipPerPass: number;
}

export const DEFAULT_COLLECTOR_LIMITS: CollectorLimits = { maxBacklogBytes: 64 * 1024 * 1024, bytesPerPass: 1024 * 1024, bytesPerPassTotal: 1024 * 1024, maxLineBytes: 16 * 1024, skipPerPass: 32 * 1024 * 1024 };

const NEWLINE = 0x0a;
/** How much of a skipped stretch is read at a time to count its lines. */
const COUNT_CHUNK = 1 << 20;

/**
 * Moves what instances print from their providers (which keep it, and which the instances
 * never wait on) into the log store. Each pass reads every source on from where the store
 * says the last pass stopped, and stores the lines with the new positions in one
 * transaction: a control plane that dies and starts again reads on, losing and repeating
 * nothing. An instance that prints faster than the store takes is never slowed: its output
 * grows at the provider, and past `maxBacklogBytes` the oldest unread part is skipped and
 * counted as dropped. Passes never overlap: one asked for while one runs waits for it.
 */
export class LogCollector {
  /** Sources read to their end after their instance ended: never read again. */
  private readonly done = new Set<string>();
  private readonly limits: CollectorLimits;
  /** Where the next pass starts in the sources (after a pass that ran out of budget). */
  private next = 0;
  /** Sources this pass finished: their instance ended, and every line of theirs is stored. */
  private finishing: string[] = [];
  private running: Promise<unknown> = Promise.resolve();
  /** Every read lands here (passes never overlap, and a read's lines are strings before the next). */
  private readonly buffer: Buffer;

  constructor(
    private readonly store: LogStore,
    limits: Partial<CollectorLimits> = {},
    private readonly now: () => number = Date.now,
  ) {
    this.limits = { ...DEFAULT_COLLECTOR_LIMITS, ...limits };
    this.buffer = Buffer.allocUnsafe(this.limits.bytesPerPass);
  }

  private finish(key: string): void {
    this.done.add(key);
    this.finishing.push(key);
  }

  /** True once source `key` was read to its end after its instance ended. */
  isDone(key: string): boolean {
    return this.done.has(key);
  }

  /**
   * One pass over `sources`: returns the lines stored, whether some source has more to read
   * than one pass takes (the caller passes again soon), and the keys of sources finished. A
   * source that cannot be read is reported in `errors` and tried again next pass.
   */
  collect(sources: LogSource[]): Promise<{ lines: number; more: boolean; errors: string[]; finished: string[] }> {
    const pass = this.running.then(() => this.pass(sources));
    this.running = pass.catch(() => undefined);
    return pass;
  }

  private async pass(sources: LogSource[]): Promise<{ lines: number; more: boolean; errors: string[]; finished: string[] }> {
    const blocks: LogBlock[] = [];
    const completed: string[] = [];
    const drops: DropRecord[] = [];
    this.finishing = [];
    const positions: SourcePosition[] = [];
    const errors: string[] = [];
    let more = false;
    let budget = this.limits.bytesPerPassTotal;
    // Round-robin start: when the budget runs out, the next pass begins where this one stopped.
    const from = this.next % Math.max(1, sources.length);
    const order = [...sources.slice(from), ...sources.slice(0, from)];
    for (const [i, source] of order.entries()) {
      if (this.done.has(source.key)) continue;
      if (budget <= 0) {
        more = true;
        this.next = (from + i) % sources.length;
        break;
      }
      try {
        const read = await this.read(source, blocks, drops, Math.min(budget, this.limits.bytesPerPass));
        if (read === undefined) continue;
        positions.push({ key: source.key, instance: source.instance, offset: read.offset });
        budget -= read.bytes;
        if (read.more) more = true;
        else if (source.ended && read.complete) completed.push(source.key);
      } catch (error) {
        errors.push(`${source.instance} (${source.stream}): ${reasonOf(error)}`);
      }
    }
    if (blocks.length > 0 || positions.length > 0) this.store.appendBlocks(blocks, positions, drops);
    // Done only once stored: a failed append leaves them to be read again.
    for (const key of completed) this.finish(key);
    return { lines: blocks.reduce((a, b) => a + b.count, 0), more, errors, finished: this.finishing };
  }

  /** Reads one source on from its position into `out`; undefined when there was nothing new. */
  private async read(source: LogSource, out: LogBlock[], drops: DropRecord[], maxBytes: number): Promise<{ offset: number; bytes: number; more: boolean; complete: boolean } | undefined> {
    let offset = this.store.positionOf(source.key);
    const buffer = this.buffer.subarray(0, maxBytes);
    let { bytes: n, size } = await source.read(offset, buffer);
    if (size < offset) {
      // Cut back by someone: read it again from its start.
      offset = 0;
      ({ bytes: n, size } = await source.read(offset, buffer));
    }
    if (size === offset) {
      if (source.ended) this.finish(source.key);
      return undefined;
    }
    const now = this.now();
    if (size - offset > this.limits.maxBacklogBytes) {
      // Too far behind: the oldest part is counted line by line and skipped, never stored,
      // a bounded stretch per pass (the event loop is never held long), up to a line's start.
      const { to: skipTo, lines: skipped } = await skipLines(source, offset, Math.min(size - this.limits.maxBacklogBytes, offset + this.limits.skipPerPass), size);
      // Counted with the position that skips them, in one transaction: never counted twice.
      drops.push({ service: source.service, instance: source.instance, lines: skipped, bytes: skipTo - offset, reason: `more than ${sizeText(this.limits.maxBacklogBytes)} of output waited to be collected`, at: now });
      // Counting is some 30 times cheaper than storing: a 32 MiB skip costs the pass's budget a 1 MiB read.
      return { offset: skipTo, bytes: Math.ceil((skipTo - offset) / 32), more: skipTo < size, complete: false };
    }
    const label = { service: source.service, env: source.env, release: source.release, instance: source.instance, stream: source.stream, at: now };
    const blocks = new BlockBuilder(buffer, label, out);
    const max = this.limits.maxLineBytes;
    let start = 0;
    while (start < n) {
      const newline = buffer.indexOf(NEWLINE, start);
      if (newline === -1 || newline >= n) {
        // No newline yet: a rest past the length bound is cut now, the remainder waits.
        while (n - start > max) {
          blocks.line(start, start + max);
          start += max;
        }
        break;
      }
      // Too long: cut at the bound; each piece is a line of its own.
      let from = start;
      while (newline - from > max) {
        blocks.line(from, from + max);
        from += max;
      }
      blocks.line(from, newline);
      start = newline + 1;
    }
    const atEnd = offset + n >= size;
    // The rest has no newline yet: left for the next pass, unless the instance is gone (it is its last line).
    if (start < n && atEnd && source.ended) {
      blocks.line(start, n);
      start = n;
    }
    blocks.flush();
    const next = offset + start;
    return { offset: next, bytes: n, more: !atEnd, complete: next >= size };
  }
}

/**
 * Counts the lines of `source` from `from` to just after the first newline at or after
 * `target` (or to `size` when there is none): where a skip ends, and how many lines it skips.
 */
async function skipLines(source: LogSource, from: number, target: number, size: number): Promise<{ to: number; lines: number }> {
  const buffer = Buffer.allocUnsafe(COUNT_CHUNK);
  let lines = 0;
  for (let at = from; at < size; ) {
    const { bytes } = await source.read(at, buffer.subarray(0, Math.min(COUNT_CHUNK, size - at)));
    if (bytes <= 0) break;
    for (let i = buffer.indexOf(NEWLINE, 0); i >= 0 && i < bytes; i = buffer.indexOf(NEWLINE, i + 1)) {
      lines++;
      if (at + i >= target) return { to: at + i + 1, lines };
    }
    at += bytes;
  }
  return { to: size, lines };
}

function sizeText(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${Math.round(bytes / 1024 / 1024)} MiB` : `${bytes} bytes`;
}

/**
 * Gathers the lines of one read into blocks without making a string of each: runs of lines
 * that sit one after another in the buffer become one slice (its newlines are the block's),
 * and only a cut line or a dropped carriage return starts a new slice.
 */
class BlockBuilder {
  private slices: string[] = [];
  private from = -1;
  private to = -1;
  private count = 0;

  constructor(
    private readonly buffer: Buffer,
    private readonly label: Omit<LogBlock, 'text' | 'count'>,
    private readonly out: LogBlock[],
  ) {}

  /** A line: bytes [from, to) of the buffer, its newline not among them. */
  line(from: number, to: number): void {
    if (to > from && this.buffer[to - 1] === 0x0d) to--; // CRLF: the CR goes
    if (this.from < 0) this.from = from;
    else if (from !== this.to + 1 || this.buffer[this.to] !== NEWLINE) {
      // Not right after the last line and its newline: the slice so far ends here.
      this.slices.push(this.buffer.toString('utf8', this.from, this.to));
      this.from = from;
    }
    this.to = to;
    if (++this.count >= BLOCK_LINES) this.flush();
  }

  /** Ends the block being gathered. */
  flush(): void {
    if (this.count === 0) return;
    this.slices.push(this.buffer.toString('utf8', this.from, this.to));
    this.out.push({ ...this.label, text: this.slices.join('\n'), count: this.count });
    this.slices = [];
    this.from = -1;
    this.to = -1;
    this.count = 0;
  }
}


import Database from 'better-sqlite3';
import { ImagoError } from '../errors.js';
import { DEFAULT_LOG_LIMIT } from './limits.js';

/** Which of an instance's outputs a line came from: `output` when the provider keeps both in one file, in the order written. */
export type LogStream = 'stdout' | 'stderr' | 'output';

/** One line an instance printed, as the log store keeps it. */
export interface LogLine {
  /** When it was collected (ms since the epoch): within a pass (200 ms) of being printed while a control plane runs. */
  at: number;
  service: string;
  env: string;
  release: number | undefined;
  instance: string;
  stream: LogStream;
  text: string;
}

/** Lines of one source read at one time, as the store keeps them: their texts joined by newlines. */
export interface LogBlock extends Omit<LogLine, 'text'> {
  /** The lines, joined by `\n` (no line holds one). */
  text: string;
  count: number;
}

/** A stored line with its place in the store (ids grow in the order lines were stored, and are never used twice). */
export interface StoredLogLine extends LogLine {
  id: number;
}

/** What to read. Every field narrows; `tail` keeps the last N of what matches. */
export interface LogQuery {
  service: string;
  release?: number | undefined;
  instance?: string | undefined;
  /** Only lines of this stream. */
  stream?: 'stdout' | 'stderr' | undefined;
  /** From this time on (ms since the epoch, inclusive). */
  since?: number | undefined;
  /** Up to this time (ms since the epoch, inclusive). */
  until?: number | undefined;
  /** A fixed string the line must contain (case-sensitive, as `grep -F`). */
  grep?: string | undefined;
  /** Only the last N lines of what matches. */
  tail?: number | undefined;
  /** Only lines stored after this id (how a follower asks for what is new). */
  afterId?: number | undefined;
  /** At most this many lines, oldest first (default DEFAULT_LOG_LIMIT). */
  limit?: number | undefined;
}

/** Lines an instance printed that the store does not have, and why. */
export interface LogDrops {
  service: string;
  instance: string;
  lines: number;
  bytes: number;
  /** The last reason (a backlog past the collector's bound, a line past the length bound). */
  reason: string;
  lastAt: number;
}

/** How far the collector read one source (`<instance>:<stream>`). */
export interface SourcePosition {
  key: string;
  instance: string;
  offset: number;
}

/** Lines skipped, to be counted in the same transaction as the position that skips them. */
export interface DropRecord {
  service: string;
  instance: string;
  lines: number;
  bytes: number;
  reason: string;
  at: number;
}

/** How long and how much the store keeps. */
export interface LogRetention {
  maxAgeMs: number;
  maxBytes: number;
}

export { DEFAULT_LOG_LIMIT };

/** The bytes a stored line is counted as: its text and its share of what a row holds besides. */
const ROW_OVERHEAD = 64;
/** The totals row that counts a service's stored lines: `lines:<service>`. */
const LINES_PREFIX = 'lines:';
/** Blocks removed per statement when retention cuts (so a big cut never holds the database long). */
const CUT_CHUNK = 500;
/** Lines per block at most: a query that needs one line decodes at most this many. */
export const BLOCK_LINES = 1_000;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS blocks (
    first    INTEGER PRIMARY KEY,
    count    INTEGER NOT NULL,
    at       INTEGER NOT NULL,
    service  TEXT NOT NULL,
    env      TEXT NOT NULL,
    release  INTEGER,
    instance TEXT NOT NULL,
    stream   TEXT NOT NULL,
    bytes    INTEGER NOT NULL,
    text     TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS blocks_by_service ON blocks(service, at);
  CREATE INDEX IF NOT EXISTS blocks_by_service_first ON blocks(service, first);
  CREATE INDEX IF NOT EXISTS blocks_by_instance ON blocks(instance, first);
  CREATE TABLE IF NOT EXISTS sources (
    file     TEXT PRIMARY KEY,
    instance TEXT NOT NULL,
    offset   INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS drops (
    instance TEXT PRIMARY KEY,
    service  TEXT NOT NULL,
    lines    INTEGER NOT NULL,
    bytes    INTEGER NOT NULL,
    reason   TEXT NOT NULL,
    last_at  INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS totals (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  );
`;

interface BlockRow {
  first: number;
  count: number;
  at: number;
  service: string;
  env: string;
  release: number | null;
  instance: string;
  stream: string;
  bytes: number;
  text: string;
}

/**
 * The central store of what instances print: a SQLite database of its own (`logs.db`), apart
 * from the state database, so that a flood of output never slows or bloats the control
 * plane's own records. Lines are kept in blocks: the lines of one source read in one pass
 * (same time and labels), up to 1,000 a row, joined by newlines, so storing a line costs a
 * share of a row and not a row of its own. Every line has an id of its own (its block's
 * first id plus its place), growing in the order lines were stored and never used twice.
 * Lines are kept after their instance and release are gone, until retention (by age, then by
 * total size) removes the oldest blocks first. It also holds the collector's read positions
 * (so a restarted control plane reads on where the last one stopped) and the count of every
 * line it could not keep.
 */
export class LogStore {
  private readonly db: Database.Database;
  private readonly appendMany: (blocks: LogBlock[], positions: SourcePosition[], drops: DropRecord[]) => void;

  constructor(readonly file: string) {
    try {
      this.db = new Database(file);
      this.db.pragma('journal_mode = WAL');
      // A crash may lose the last lines written, never the database: lines are re-read from the instances' files.
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('busy_timeout = 5000');
      this.db.exec(SCHEMA);
      // Positions kept before the streams were apart are by file path, `<home>/logs/<id>.log`:
      // that file is stdout's now (an instance started then writes both streams into it).
      this.db.prepare("UPDATE sources SET file = instance || ':stdout' WHERE file LIKE '%/' || instance || '.log'").run();
    } catch (error) {
      throw new ImagoError(`the log store ${file} cannot be opened: ${(error as Error).message}`, { cause: error });
    }
    const insert = this.db.prepare('INSERT INTO blocks (first, count, at, service, env, release, instance, stream, bytes, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    const position = this.db.prepare('INSERT INTO sources (file, instance, offset) VALUES (?, ?, ?) ON CONFLICT(file) DO UPDATE SET offset = excluded.offset');
    const add = this.db.prepare('INSERT INTO totals (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value');
    this.appendMany = this.db.transaction((blocks: LogBlock[], positions: SourcePosition[], drops: DropRecord[]) => {
      for (const d of drops) this.recordDrop(d.service, d.instance, d.lines, d.bytes, d.reason, d.at);
      let next = this.getTotal('next_id') || 1;
      let bytes = 0;
      const perService = new Map<string, number>();
      for (const b of blocks) {
        if (b.count === 0) continue;
        const size = Buffer.byteLength(b.text) - (b.count - 1) + ROW_OVERHEAD * b.count;
        insert.run(next, b.count, b.at, b.service, b.env, b.release ?? null, b.instance, b.stream, size, b.text);
        next += b.count;
        bytes += size;
        perService.set(b.service, (perService.get(b.service) ?? 0) + b.count);
      }
      this.setTotal('next_id', next);
      if (bytes > 0) add.run('bytes', bytes);
      for (const [service, n] of perService) add.run(`${LINES_PREFIX}${service}`, n);
      for (const p of positions) position.run(p.key, p.instance, p.offset);
    });
  }

  /**
   * Stores `lines` and the read positions they were read up to, in one transaction: a crash
   * keeps both or neither, so no line is stored twice or skipped. A newline inside a line's
   * text is stored as a space.
   */
  append(lines: LogLine[], positions: SourcePosition[] = []): void {
    const blocks: LogBlock[] = [];
    for (let i = 0; i < lines.length; ) {
      // A block: the run of lines with the same time and labels, at most BLOCK_LINES of them.
      const l = lines[i]!;
      let j = i + 1;
      while (j < lines.length && j - i < BLOCK_LINES && sameBlock(l, lines[j]!)) j++;
      blocks.push({ at: l.at, service: l.service, env: l.env, release: l.release, instance: l.instance, stream: l.stream, count: j - i, text: lines.slice(i, j).map((x) => x.text.replace(/\n/g, ' ')).join('\n') });
      i = j;
    }
    this.appendMany(blocks, positions, []);
  }

  /** Stores blocks as they are (the collector's way: no line is made an object of its own) and the read positions, in one transaction. */
  appendBlocks(blocks: LogBlock[], positions: SourcePosition[] = [], drops: DropRecord[] = []): void {
    this.appendMany(blocks, positions, drops);
  }

  /** Where the collector stopped reading source `key` (0 when it never read it). */
  positionOf(key: string): number {
    const row = this.db.prepare('SELECT offset FROM sources WHERE file = ?').get(key) as { offset: number } | undefined;
    return row?.offset ?? 0;
  }

  /** Forgets the read position of a source that is gone. */
  forgetSource(key: string): void {
    this.db.prepare('DELETE FROM sources WHERE file = ?').run(key);
  }

  /** Counts lines (and bytes) of an instance the store could not keep. */
  recordDrop(service: string, instance: string, lines: number, bytes: number, reason: string, now: number): void {
    this.db
      .prepare(
        `INSERT INTO drops (instance, service, lines, bytes, reason, last_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(instance) DO UPDATE SET lines = lines + excluded.lines, bytes = bytes + excluded.bytes, reason = excluded.reason, last_at = excluded.last_at`,
      )
      .run(instance, service, lines, bytes, reason, now);
  }

  /** The drops of a service's instances (all services when none is named). */
  drops(service?: string): LogDrops[] {
    const rows = (service ? this.db.prepare('SELECT * FROM drops WHERE service = ? ORDER BY instance').all(service) : this.db.prepare('SELECT * FROM drops ORDER BY service, instance').all()) as Array<{ instance: string; service: string; lines: number; bytes: number; reason: string; last_at: number }>;
    return rows.map((r) => ({ service: r.service, instance: r.instance, lines: r.lines, bytes: r.bytes, reason: r.reason, lastAt: r.last_at }));
  }

  /** The lines that match `query`, oldest first. */
  query(query: LogQuery): StoredLogLine[] {
    const where = ['service = ?'];
    const args: Array<string | number> = [query.service];
    if (query.release !== undefined) (where.push('release = ?'), args.push(query.release));
    if (query.instance !== undefined) (where.push('instance = ?'), args.push(query.instance));
    if (query.stream !== undefined) (where.push('stream = ?'), args.push(query.stream));
    if (query.since !== undefined) (where.push('at >= ?'), args.push(query.since));
    if (query.until !== undefined) (where.push('at <= ?'), args.push(query.until));
    // A block ends after the id when it starts after id - BLOCK_LINES (the bound lets SQLite seek, not scan).
    if (query.afterId !== undefined) (where.push('first > ? AND first + count - 1 > ?'), args.push(query.afterId - BLOCK_LINES, query.afterId));
    const grep = query.grep !== undefined && query.grep !== '' ? query.grep : undefined;
    // A block with no match anywhere in its text is skipped by SQLite, never decoded.
    if (grep !== undefined) (where.push('instr(text, ?) > 0'), args.push(grep));
    const limit = Math.max(1, Math.min(query.limit ?? DEFAULT_LOG_LIMIT, 1_000_000));
    const tail = query.tail !== undefined;
    const want = tail ? Math.min(Math.max(0, query.tail!), limit) : limit;
    const out: StoredLogLine[] = [];
    if (want === 0) return out;
    const matches = (l: StoredLogLine) => (query.afterId === undefined || l.id > query.afterId) && (grep === undefined || l.text.includes(grep));
    // The last N: blocks newest first, each read from its end, then turned around.
    const rows = this.db.prepare(`SELECT * FROM blocks WHERE ${where.join(' AND ')} ORDER BY first ${tail ? 'DESC' : 'ASC'}`).iterate(...args) as IterableIterator<BlockRow>;
    for (const row of rows) {
      const lines = linesOf(row);
      if (tail) lines.reverse();
      for (const l of lines) {
        if (!matches(l)) continue;
        out.push(l);
        if (out.length >= want) break;
      }
      if (out.length >= want) break; // (ends the statement's iteration)
    }
    if (tail) out.reverse();
    return out;
  }

  /** Up to `limit` lines of every service stored after `id`, oldest first (what a forwarder sends next). */
  after(id: number, limit: number): StoredLogLine[] {
    const out: StoredLogLine[] = [];
    const rows = this.db.prepare('SELECT * FROM blocks WHERE first > ? AND first + count - 1 > ? ORDER BY first').iterate(id - BLOCK_LINES, id) as IterableIterator<BlockRow>;
    for (const row of rows) {
      for (const l of linesOf(row)) if (l.id > id && out.length < limit) out.push(l);
      if (out.length >= limit) break;
    }
    return out;
  }

  /** A named number kept in the store (a forwarder's position), 0 when never set. */
  getTotal(name: string): number {
    return (this.db.prepare('SELECT value FROM totals WHERE name = ?').get(name) as { value: number } | undefined)?.value ?? 0;
  }

  /** Sets a named number kept in the store. */
  setTotal(name: string, value: number): void {
    this.db.prepare('INSERT INTO totals (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value').run(name, value);
  }

  /** The id of the newest line stored (0 when none is). */
  lastId(): number {
    const row = this.db.prepare('SELECT first + count - 1 AS id FROM blocks ORDER BY first DESC LIMIT 1').get() as { id: number } | undefined;
    return row?.id ?? 0;
  }

  /** The bytes the stored lines count as (their text, and a row's overhead each). */
  bytes(): number {
    return this.getTotal('bytes');
  }

  /** Lines ever stored per service (retention does not take them back: a counter). */
  linesStored(): Array<{ service: string; lines: number }> {
    const rows = this.db.prepare("SELECT name, value FROM totals WHERE name LIKE 'lines:%' ORDER BY name").all() as Array<{ name: string; value: number }>;
    return rows.map((r) => ({ service: r.name.slice(LINES_PREFIX.length), lines: r.value }));
  }

  /** How many lines are stored. */
  count(): number {
    return (this.db.prepare('SELECT coalesce(sum(count), 0) AS n FROM blocks').get() as { n: number }).n;
  }

  /**
   * Removes what retention no longer keeps, oldest first: blocks older than `maxAgeMs`, then
   * the oldest blocks until the rest fit in `maxBytes` (so up to a block, 1,000 lines, more
   * than the excess may go). Returns how many lines went.
   */
  retain(retention: LogRetention, now: number): number {
    let removed = 0;
    const cutBefore = now - retention.maxAgeMs;
    for (;;) {
      const cut = this.cut(this.db.prepare('SELECT first, count, bytes FROM blocks WHERE at < ? ORDER BY first LIMIT ?').all(cutBefore, CUT_CHUNK) as CutRow[]);
      removed += cut.lines;
      if (cut.blocks < CUT_CHUNK) break;
    }
    while (this.bytes() > retention.maxBytes) {
      let excess = this.bytes() - retention.maxBytes;
      const oldest = this.db.prepare('SELECT first, count, bytes FROM blocks ORDER BY first LIMIT ?').all(CUT_CHUNK) as CutRow[];
      const chosen: CutRow[] = [];
      for (const b of oldest) {
        if (excess <= 0) break;
        chosen.push(b);
        excess -= b.bytes;
      }
      const cut = this.cut(chosen);
      removed += cut.lines;
      if (cut.blocks === 0) {
        // Nothing left to cut: the count was off (an older store's); it is what remains.
        this.setTotal('bytes', (this.db.prepare('SELECT coalesce(sum(bytes), 0) AS b FROM blocks').get() as { b: number }).b);
        break;
      }
    }
    return removed;
  }

  /** Closes the database. */
  close(): void {
    this.db.close();
  }

  /** Removes `blocks` and counts their bytes out, in one transaction. */
  private cut(blocks: CutRow[]): { blocks: number; lines: number } {
    if (blocks.length === 0) return { blocks: 0, lines: 0 };
    return this.db.transaction(() => {
      const remove = this.db.prepare('DELETE FROM blocks WHERE first = ?');
      for (const b of blocks) remove.run(b.first);
      const bytes = blocks.reduce((a, b) => a + b.bytes, 0);
      this.db.prepare("UPDATE totals SET value = max(0, value - ?) WHERE name = 'bytes'").run(bytes);
      return { blocks: blocks.length, lines: blocks.reduce((a, b) => a + b.count, 0) };
    })();
  }
}

interface CutRow {
  first: number;
  count: number;
  bytes: number;
}

/** True when two lines go in one block: the same time and labels. */
function sameBlock(a: LogLine, b: LogLine): boolean {
  return a.at === b.at && a.service === b.service && a.env === b.env && a.release === b.release && a.instance === b.instance && a.stream === b.stream;
}

/** A block's lines, each with its id. */
function linesOf(row: BlockRow): StoredLogLine[] {
  const base = { at: row.at, service: row.service, env: row.env, release: row.release ?? undefined, instance: row.instance, stream: row.stream as LogStream };
  return row.text.split('\n', row.count).map((text, i) => ({ ...base, id: row.first + i, text }));
}

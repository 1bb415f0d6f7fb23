import Database from 'better-sqlite3';
import { ImagoError } from '../errors.js';

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

/** A stored line with its place in the store (ids grow in the order lines were stored, and are never used twice). */
export interface StoredLogLine extends LogLine {
  id: number;
}

/** What to read. Every field narrows; `tail` keeps the last N of what matches. */
export interface LogQuery {
  service: string;
  release?: number | undefined;
  instance?: string | undefined;
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

/** How long and how much the store keeps. */
export interface LogRetention {
  maxAgeMs: number;
  maxBytes: number;
}

/** Lines one query answers at most, unless it asks for fewer. */
export const DEFAULT_LOG_LIMIT = 10_000;

/** The bytes a stored line is counted as: its text and what the row holds besides. */
const ROW_OVERHEAD = 64;
/** The totals row that counts a service's stored lines: `lines:<service>`. */
const LINES_PREFIX = 'lines:';
/** Rows removed per statement when retention cuts (so a big cut never holds the database long). */
const CUT_CHUNK = 5_000;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS lines (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    service  TEXT NOT NULL,
    env      TEXT NOT NULL,
    release  INTEGER,
    instance TEXT NOT NULL,
    stream   TEXT NOT NULL,
    text     TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS lines_by_service ON lines(service, at);
  CREATE INDEX IF NOT EXISTS lines_by_instance ON lines(instance, id);
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

interface Row {
  id: number;
  at: number;
  service: string;
  env: string;
  release: number | null;
  instance: string;
  stream: string;
  text: string;
}

/**
 * The central store of what instances print: a SQLite database of its own (`logs.db`), apart
 * from the state database, so that a flood of output never slows or bloats the control
 * plane's own records. Lines are kept after their instance and release are gone, until
 * retention (by age, then by total size) removes the oldest first. It also holds the
 * collector's read positions (so a restarted control plane reads on where the last one
 * stopped) and the count of every line it could not keep.
 */
export class LogStore {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly appendMany: (lines: LogLine[], positions: Array<{ file: string; instance: string; offset: number }>) => void;

  constructor(readonly file: string) {
    try {
      this.db = new Database(file);
      this.db.pragma('journal_mode = WAL');
      // A crash may lose the last lines written, never the database: lines are re-read from the instances' files.
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('busy_timeout = 5000');
      this.db.exec(SCHEMA);
    } catch (error) {
      throw new ImagoError(`the log store ${file} cannot be opened: ${(error as Error).message}`, { cause: error });
    }
    this.insert = this.db.prepare('INSERT INTO lines (at, service, env, release, instance, stream, text) VALUES (?, ?, ?, ?, ?, ?, ?)');
    const position = this.db.prepare('INSERT INTO sources (file, instance, offset) VALUES (?, ?, ?) ON CONFLICT(file) DO UPDATE SET offset = excluded.offset');
    const addBytes = this.db.prepare("INSERT INTO totals (name, value) VALUES ('bytes', ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value");
    const addLines = this.db.prepare('INSERT INTO totals (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value');
    this.appendMany = this.db.transaction((lines: LogLine[], positions: Array<{ file: string; instance: string; offset: number }>) => {
      let bytes = 0;
      const perService = new Map<string, number>();
      for (const l of lines) {
        this.insert.run(l.at, l.service, l.env, l.release ?? null, l.instance, l.stream, l.text);
        bytes += Buffer.byteLength(l.text) + ROW_OVERHEAD;
        perService.set(l.service, (perService.get(l.service) ?? 0) + 1);
      }
      if (bytes > 0) addBytes.run(bytes);
      for (const [service, n] of perService) addLines.run(`${LINES_PREFIX}${service}`, n);
      for (const p of positions) position.run(p.file, p.instance, p.offset);
    });
  }

  /**
   * Stores `lines` and the read positions they were read up to, in one transaction: a crash
   * keeps both or neither, so no line is stored twice or skipped.
   */
  append(lines: LogLine[], positions: Array<{ file: string; instance: string; offset: number }> = []): void {
    this.appendMany(lines, positions);
  }

  /** Where the collector stopped reading `file` (0 when it never read it). */
  positionOf(file: string): number {
    const row = this.db.prepare('SELECT offset FROM sources WHERE file = ?').get(file) as { offset: number } | undefined;
    return row?.offset ?? 0;
  }

  /** Forgets the read position of a file that is gone. */
  forgetSource(file: string): void {
    this.db.prepare('DELETE FROM sources WHERE file = ?').run(file);
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
    if (query.since !== undefined) (where.push('at >= ?'), args.push(query.since));
    if (query.until !== undefined) (where.push('at <= ?'), args.push(query.until));
    if (query.afterId !== undefined) (where.push('id > ?'), args.push(query.afterId));
    if (query.grep !== undefined && query.grep !== '') (where.push('instr(text, ?) > 0'), args.push(query.grep));
    const limit = Math.max(1, Math.min(query.limit ?? DEFAULT_LOG_LIMIT, 1_000_000));
    const count = query.tail !== undefined ? Math.min(Math.max(0, query.tail), limit) : limit;
    // The last N: read newest first, then turned around.
    const order = query.tail !== undefined ? 'DESC' : 'ASC';
    const rows = this.db.prepare(`SELECT * FROM lines WHERE ${where.join(' AND ')} ORDER BY id ${order} LIMIT ?`).all(...args, count) as Row[];
    if (query.tail !== undefined) rows.reverse();
    return rows.map(toLine);
  }

  /** Up to `limit` lines of every service stored after `id`, oldest first (what a forwarder sends next). */
  after(id: number, limit: number): StoredLogLine[] {
    return (this.db.prepare('SELECT * FROM lines WHERE id > ? ORDER BY id LIMIT ?').all(id, limit) as Row[]).map(toLine);
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
    return (this.db.prepare('SELECT max(id) AS id FROM lines').get() as { id: number | null }).id ?? 0;
  }

  /** The bytes the stored lines count as (their text, and a row's overhead each). */
  bytes(): number {
    return (this.db.prepare("SELECT value FROM totals WHERE name = 'bytes'").get() as { value: number } | undefined)?.value ?? 0;
  }

  /** Lines ever stored per service (retention does not take them back: a counter). */
  linesStored(): Array<{ service: string; lines: number }> {
    const rows = this.db.prepare("SELECT name, value FROM totals WHERE name LIKE 'lines:%' ORDER BY name").all() as Array<{ name: string; value: number }>;
    return rows.map((r) => ({ service: r.name.slice(LINES_PREFIX.length), lines: r.value }));
  }

  /** How many lines are stored. */
  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM lines').get() as { n: number }).n;
  }

  /**
   * Removes what retention no longer keeps, oldest first: lines older than `maxAgeMs`, then
   * the oldest lines until the rest fit in `maxBytes`. Returns how many lines went.
   */
  retain(retention: LogRetention, now: number): number {
    let removed = 0;
    const cutBefore = now - retention.maxAgeMs;
    // By age: ids grow with time, so the old lines are the first ids (a chunk at a time).
    for (;;) {
      const cut = this.cutOldest(CUT_CHUNK, cutBefore);
      removed += cut;
      if (cut < CUT_CHUNK) break;
    }
    while (this.bytes() > retention.maxBytes) {
      const cut = this.cutOldest(Math.min(CUT_CHUNK, Math.max(1, this.linesOver(retention.maxBytes))));
      removed += cut;
      if (cut === 0) break;
    }
    return removed;
  }

  /** Closes the database. */
  close(): void {
    this.db.close();
  }

  /** About how many of the oldest lines must go for the rest to fit in `maxBytes`. */
  private linesOver(maxBytes: number): number {
    const total = this.bytes();
    const count = this.count();
    if (count === 0) return 0;
    return Math.ceil((total - maxBytes) / (total / count));
  }

  /** Removes up to `n` of the oldest lines (only those before `before`, when given); returns how many went. */
  private cutOldest(n: number, before?: number): number {
    return this.db.transaction(() => {
      const filter = before === undefined ? '' : 'WHERE at < ?';
      const rows = this.db.prepare(`SELECT id, length(CAST(text AS BLOB)) AS size FROM lines ${filter} ORDER BY id LIMIT ?`).all(...(before === undefined ? [] : [before]), n) as Array<{ id: number; size: number }>;
      if (rows.length === 0) return 0;
      if (before === undefined) this.db.prepare('DELETE FROM lines WHERE id <= ?').run(rows.at(-1)!.id);
      else this.db.prepare('DELETE FROM lines WHERE id <= ? AND at < ?').run(rows.at(-1)!.id, before);
      const bytes = rows.reduce((a, r) => a + r.size + ROW_OVERHEAD, 0);
      this.db.prepare("UPDATE totals SET value = max(0, value - ?) WHERE name = 'bytes'").run(bytes);
      return rows.length;
    })();
  }
}

function toLine(row: Row): StoredLogLine {
  return { id: row.id, at: row.at, service: row.service, env: row.env, release: row.release ?? undefined, instance: row.instance, stream: row.stream as LogStream, text: row.text };
}

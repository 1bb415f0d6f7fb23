import Database from 'better-sqlite3';
import { ImagoError } from '../errors.js';

/** An open imago state database. */
export type Db = Database.Database;

/**
 * Schema migrations, applied in order, each once. Never edit a shipped one: append.
 * `PRAGMA user_version` records how many have run.
 */
const MIGRATIONS: string[] = [
  `
  CREATE TABLE images (
    digest        TEXT PRIMARY KEY,
    config_digest TEXT NOT NULL,
    size          INTEGER NOT NULL,
    source        TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    provenance    TEXT
  );
  CREATE TABLE tags (
    name       TEXT NOT NULL,
    tag        TEXT NOT NULL,
    digest     TEXT NOT NULL REFERENCES images(digest),
    updated_at TEXT NOT NULL,
    PRIMARY KEY (name, tag)
  );
  CREATE INDEX tags_by_digest ON tags(digest);
  CREATE TABLE layer_cache (
    key        TEXT PRIMARY KEY,
    digest     TEXT NOT NULL,
    diff_id    TEXT NOT NULL,
    size       INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    created_at TEXT NOT NULL,
    used_at    TEXT NOT NULL
  );
  CREATE TABLE leases (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    host       TEXT NOT NULL,
    started_at TEXT NOT NULL
  );
  CREATE TABLE file_hashes (
    path     TEXT PRIMARY KEY,
    dev      TEXT NOT NULL,
    ino      TEXT NOT NULL,
    size     INTEGER NOT NULL,
    mtime_ns TEXT NOT NULL,
    ctime_ns TEXT NOT NULL,
    digest   TEXT NOT NULL
  );
  `,
];

/** Opens (creating if needed) the state database at `file` and brings its schema up to date. */
export function openDb(file: string): Db {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

/** Applies every migration the database has not seen, each in its own transaction. */
export function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new ImagoError(`state database schema version ${current} is newer than this imago understands (${MIGRATIONS.length}): upgrade imago`);
  }
  for (let version = current; version < MIGRATIONS.length; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version]!);
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
}

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
  // 2: deploy state (src/state/): releases, instances, deploys, leased locks, the hash-chained ledger.
  `
  CREATE TABLE releases (
    id          INTEGER PRIMARY KEY,
    service     TEXT NOT NULL,
    version     INTEGER NOT NULL,
    digest      TEXT NOT NULL,
    config      TEXT NOT NULL,
    status      TEXT NOT NULL,
    reason      TEXT,
    rollback_of INTEGER REFERENCES releases(id),
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    finished_at TEXT,
    UNIQUE (service, version)
  );
  CREATE INDEX releases_by_digest ON releases(digest);
  CREATE TRIGGER releases_immutable BEFORE UPDATE OF id, service, version, digest, config, rollback_of, created_by, created_at ON releases
  BEGIN SELECT RAISE(ABORT, 'releases are immutable: only status, reason and finished_at change'); END;
  CREATE TRIGGER releases_no_delete BEFORE DELETE ON releases
  BEGIN SELECT RAISE(ABORT, 'releases are never deleted'); END;

  CREATE TABLE instances (
    id         TEXT PRIMARY KEY,
    service    TEXT NOT NULL,
    release_id INTEGER NOT NULL REFERENCES releases(id),
    provider   TEXT NOT NULL,
    port       INTEGER,
    state      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  CREATE INDEX instances_by_service ON instances(service, state);

  CREATE TABLE deploys (
    id              INTEGER PRIMARY KEY,
    service         TEXT NOT NULL,
    release_id      INTEGER NOT NULL REFERENCES releases(id),
    from_release_id INTEGER REFERENCES releases(id),
    plan            TEXT NOT NULL,
    state           TEXT NOT NULL,
    started_at      TEXT NOT NULL,
    finished_at     TEXT,
    reason          TEXT,
    transcript      TEXT
  );
  CREATE INDEX deploys_by_service ON deploys(service, id);
  CREATE UNIQUE INDEX deploys_one_running ON deploys(service) WHERE state = 'running';

  CREATE TABLE locks (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at INTEGER NOT NULL
  );

  CREATE TABLE events (
    seq        INTEGER PRIMARY KEY,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    kind       TEXT NOT NULL,
    service    TEXT,
    release_id INTEGER,
    instance   TEXT,
    data       TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE
  );
  CREATE INDEX events_by_service ON events(service, seq);
  CREATE TRIGGER events_no_update BEFORE UPDATE ON events
  BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: events cannot be changed'); END;
  CREATE TRIGGER events_no_delete BEFORE DELETE ON events
  BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: events cannot be deleted'); END;
  `,
  // 3: the guard (src/state/services.ts, instances.ts, drift.ts): desired state as rows, failures awaiting replacement, drift findings.
  `
  CREATE TABLE services (
    name        TEXT PRIMARY KEY,
    env         TEXT NOT NULL,
    provider    TEXT NOT NULL,
    release_id  INTEGER REFERENCES releases(id),
    replicas    INTEGER NOT NULL CHECK (replicas >= 0),
    listen_host TEXT,
    listen_port INTEGER,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
  );
  INSERT INTO services (name, env, provider, release_id, replicas, listen_host, listen_port, created_at, updated_at, updated_by)
    SELECT r.service, 'default', COALESCE(json_extract(r.config, '$.provider'), 'process'), r.id, COALESCE(json_extract(r.config, '$.replicas'), 1),
           json_extract(r.config, '$.listen.host'), json_extract(r.config, '$.listen.port'), r.created_at, r.created_at, 'imago'
    FROM releases r
    WHERE r.status = 'live' AND r.version = (SELECT MAX(version) FROM releases l WHERE l.service = r.service AND l.status = 'live');
  -- A first deploy caught mid-way by the upgrade (no live release): a desired state of none, so
  -- its loop stops what it started (the control plane aborts the deploy at its start).
  INSERT INTO services (name, env, provider, release_id, replicas, listen_host, listen_port, created_at, updated_at, updated_by)
    SELECT d.service, 'default', COALESCE(json_extract(r.config, '$.provider'), 'process'), NULL, 0,
           json_extract(r.config, '$.listen.host'), json_extract(r.config, '$.listen.port'), d.started_at, d.started_at, 'imago'
    FROM deploys d JOIN releases r ON r.id = d.release_id
    WHERE d.state = 'running' AND NOT EXISTS (SELECT 1 FROM services s WHERE s.name = d.service);

  ALTER TABLE instances ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE instances ADD COLUMN replaces TEXT;
  ALTER TABLE instances ADD COLUMN healthy_at TEXT;
  ALTER TABLE instances ADD COLUMN ended_at TEXT;
  ALTER TABLE instances ADD COLUMN reason TEXT;
  ALTER TABLE instances ADD COLUMN streak INTEGER;
  ALTER TABLE instances ADD COLUMN awaiting INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE instances ADD COLUMN output TEXT;
  CREATE INDEX instances_awaiting ON instances(service) WHERE awaiting = 1;
  ALTER TABLE deploys ADD COLUMN from_replicas INTEGER;

  CREATE TABLE drift_findings (
    id         INTEGER PRIMARY KEY,
    service    TEXT NOT NULL,
    instance   TEXT NOT NULL,
    release_id INTEGER,
    finding    TEXT NOT NULL,
    action     TEXT NOT NULL,
    found_at   TEXT NOT NULL,
    UNIQUE (instance, finding)
  );
  CREATE INDEX drift_by_service ON drift_findings(service, id);
  `,
  // 4: the data plane (src/state/services.ts): what a service's router speaks, and its TLS files.
  `
  ALTER TABLE services ADD COLUMN protocol TEXT NOT NULL DEFAULT 'http' CHECK (protocol IN ('http', 'tcp'));
  ALTER TABLE services ADD COLUMN tls_cert TEXT;
  ALTER TABLE services ADD COLUMN tls_key TEXT;
  `,
  // 5: revoked digests (src/state/revocations.ts): never deployed again, anywhere.
  `
  CREATE TABLE revocations (
    digest     TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    revoked_by TEXT NOT NULL,
    revoked_at TEXT NOT NULL
  );
  `,
  // 6: environments (src/state/releases.ts): a promoted release names where it came from, as immutably as the rest of it.
  `
  ALTER TABLE releases ADD COLUMN promoted_from TEXT;
  DROP TRIGGER releases_immutable;
  CREATE TRIGGER releases_immutable BEFORE UPDATE OF id, service, version, digest, config, rollback_of, created_by, created_at, promoted_from ON releases
  BEGIN SELECT RAISE(ABORT, 'releases are immutable: only status, reason and finished_at change'); END;
  `,
  // 7: named API tokens with scopes (src/state/tokens.ts): only their hashes.
  `
  CREATE TABLE tokens (
    name       TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    scopes     TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
  );
  `,
  // 8: signatures (src/sign/signatures.ts): DSSE-signed provenance, stored as artifacts referring to their image.
  `
  CREATE TABLE signatures (
    manifest   TEXT PRIMARY KEY,
    subject    TEXT NOT NULL,
    keyid      TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE INDEX signatures_by_subject ON signatures(subject);
  `,
  // 9: facts of the state folder itself (src/state/settings.ts): its home environment, and each environment's policy.
  `
  CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  `,
  // 10: secrets (src/state/secrets.ts), sealed with AES-256-GCM; a release names the versions it uses, as immutably as the rest of it.
  `
  CREATE TABLE secret_names (
    env        TEXT NOT NULL,
    name       TEXT NOT NULL,
    latest     INTEGER NOT NULL,
    removed_at TEXT,
    PRIMARY KEY (env, name)
  );
  CREATE TABLE secret_versions (
    env        TEXT NOT NULL,
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    iv         BLOB NOT NULL,
    data       BLOB NOT NULL,
    tag        BLOB NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (env, name, version)
  );
  ALTER TABLE releases ADD COLUMN secrets TEXT;
  DROP TRIGGER releases_immutable;
  CREATE TRIGGER releases_immutable BEFORE UPDATE OF id, service, version, digest, config, rollback_of, created_by, created_at, promoted_from, secrets ON releases
  BEGIN SELECT RAISE(ABORT, 'releases are immutable: only status, reason and finished_at change'); END;
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

/** Applies every migration the database has not seen (or up to `to`, for tests of an older schema), each in its own transaction. */
export function migrate(db: Db, options: { to?: number } = {}): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new ImagoError(`state database schema version ${current} is newer than this imago understands (${MIGRATIONS.length}): upgrade imago`);
  }
  for (let version = current; version < Math.min(options.to ?? MIGRATIONS.length, MIGRATIONS.length); version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version]!);
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
}

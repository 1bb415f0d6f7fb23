/**
 * Secrets of each environment: named, versioned, sealed at rest (src/secrets/seal.ts), never
 * kept or shown in clear. A release names the versions it uses (`releases.secrets`), so a
 * rollback brings back the values it ran with. A version is pruned once nothing can run it
 * any more: when a newer one exists and no release that served or could be rolled back to
 * (pending, deploying, live, superseded, rolled back) uses it, or when its name was removed
 * and no release that runs (pending, deploying, live) uses it.
 */
import { ConfigError } from '../errors.js';
import { seal, unseal } from '../secrets/seal.js';
import type { Db } from '../store/db.js';
import { checkText } from './check.js';
import { appendEvent } from './ledger.js';

/** The secret versions a release uses: its environment, and a version per name. */
export interface ReleaseSecrets {
  env: string;
  versions: Record<string, number>;
}

/** A secret as listed: never its value. */
export interface SecretInfo {
  env: string;
  name: string;
  /** The version a deploy takes now. */
  latest: number;
  /** Every version still kept (older ones: for rollbacks). */
  versions: number[];
  removedAt: string | undefined;
}

const aad = (env: string, name: string, version: number) => `${env}/${name}/${version}`;

/** At most this many bytes in one secret. */
export const MAX_SECRET_BYTES = 64 * 1024;

/** Stores a new version of secret `name` of `env` and returns it. In the ledger (`secret.set`: no value). */
export function setSecret(db: Db, key: Buffer, input: { env: string; name: string; value: Buffer; actor: string }, now: Date = new Date()): number {
  const { env, name, value } = input;
  if (value.length === 0) throw new ConfigError(`secret "${name}": the value is empty (it is read from standard input)`);
  if (value.length > MAX_SECRET_BYTES) throw new ConfigError(`secret "${name}": ${value.length} bytes, expected at most ${MAX_SECRET_BYTES}`);
  const actor = checkText('actor', input.actor);
  return db
    .transaction(() => {
      const row = db.prepare('SELECT latest FROM secret_names WHERE env = ? AND name = ?').get(env, name) as { latest: number } | undefined;
      const version = (row?.latest ?? 0) + 1;
      const sealed = seal(key, value, aad(env, name, version));
      db.prepare('INSERT INTO secret_names (env, name, latest) VALUES (?, ?, ?) ON CONFLICT (env, name) DO UPDATE SET latest = excluded.latest, removed_at = NULL').run(env, name, version);
      db.prepare('INSERT INTO secret_versions (env, name, version, iv, data, tag, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(env, name, version, sealed.iv, sealed.data, sealed.tag, actor, now.toISOString());
      appendEvent(db, { actor, kind: 'secret.set', data: { env, name, version } }, now);
      pruneSecrets(db, env);
      return version;
    })
    .immediate();
}

/**
 * Removes secret `name` of `env`: no deploy takes it any more, and every version no running
 * release uses is deleted now (the rest once their releases stop running). In the ledger.
 */
export function removeSecret(db: Db, env: string, name: string, actor: string, now: Date = new Date()): { deleted: number; kept: number } {
  return db
    .transaction(() => {
      const row = db.prepare('SELECT removed_at FROM secret_names WHERE env = ? AND name = ?').get(env, name) as { removed_at: string | null } | undefined;
      if (!row) throw new ConfigError(`no secret "${name}" in ${env} (imago secret ls ${env} lists them)`);
      if (!row.removed_at) db.prepare('UPDATE secret_names SET removed_at = ? WHERE env = ? AND name = ?').run(now.toISOString(), env, name);
      const before = (db.prepare('SELECT COUNT(*) AS n FROM secret_versions WHERE env = ? AND name = ?').get(env, name) as { n: number }).n;
      pruneSecrets(db, env);
      const kept = (db.prepare('SELECT COUNT(*) AS n FROM secret_versions WHERE env = ? AND name = ?').get(env, name) as { n: number }).n;
      appendEvent(db, { actor: checkText('actor', actor), kind: 'secret.removed', data: { env, name, deleted: before - kept, kept } }, now);
      return { deleted: before - kept, kept };
    })
    .immediate();
}

/** Deletes the versions of `env` nothing can run any more (see the file's comment). */
export function pruneSecrets(db: Db, env: string): number {
  const inUse = (statuses: string[]) => {
    const used = new Set<string>();
    const rows = db.prepare(`SELECT secrets FROM releases WHERE secrets IS NOT NULL AND status IN (${statuses.map(() => '?').join(', ')})`).all(...statuses) as Array<{ secrets: string }>;
    for (const row of rows) {
      const secrets = JSON.parse(row.secrets) as ReleaseSecrets;
      if (secrets.env !== env) continue;
      for (const [name, version] of Object.entries(secrets.versions)) used.add(`${name}/${version}`);
    }
    return used;
  };
  const running = inUse(['pending', 'deploying', 'live']);
  const restorable = inUse(['pending', 'deploying', 'live', 'superseded', 'rolled-back']);
  const names = db.prepare('SELECT name, latest, removed_at FROM secret_names WHERE env = ?').all(env) as Array<{ name: string; latest: number; removed_at: string | null }>;
  const del = db.prepare('DELETE FROM secret_versions WHERE env = ? AND name = ? AND version = ?');
  let deleted = 0;
  for (const n of names) {
    const versions = (db.prepare('SELECT version FROM secret_versions WHERE env = ? AND name = ?').all(env, n.name) as Array<{ version: number }>).map((r) => r.version);
    for (const v of versions) {
      const keep = n.removed_at ? running.has(`${n.name}/${v}`) : v === n.latest || restorable.has(`${n.name}/${v}`);
      if (!keep) deleted += del.run(env, n.name, v).changes;
    }
  }
  return deleted;
}

/** The secrets of `env` (or of every environment), by name: versions, never values. */
export function listSecrets(db: Db, env?: string): SecretInfo[] {
  const names = db.prepare(`SELECT env, name, latest, removed_at FROM secret_names ${env ? 'WHERE env = ?' : ''} ORDER BY env, name`).all(...(env ? [env] : [])) as Array<{ env: string; name: string; latest: number; removed_at: string | null }>;
  return names.map((n) => ({
    env: n.env,
    name: n.name,
    latest: n.latest,
    versions: (db.prepare('SELECT version FROM secret_versions WHERE env = ? AND name = ? ORDER BY version').all(n.env, n.name) as Array<{ version: number }>).map((r) => r.version),
    removedAt: n.removed_at ?? undefined,
  }));
}

/** The version of each of `names` a deploy into `env` takes now; one never set, or removed, is an error saying how to set it. */
export function currentVersions(db: Db, env: string, names: string[]): Record<string, number> {
  const versions: Record<string, number> = {};
  for (const name of names) {
    const row = db.prepare('SELECT latest, removed_at FROM secret_names WHERE env = ? AND name = ?').get(env, name) as { latest: number; removed_at: string | null } | undefined;
    if (!row || row.removed_at) throw new ConfigError(`secret "${name}" is ${row ? 'removed' : 'not set'} in ${env}: set it with \`imago secret set ${env} ${name}\` (the value on standard input)`);
    versions[name] = row.latest;
  }
  return versions;
}

/** The value of version `version` of secret `name` of `env`; one pruned or removed is an error naming it. */
export function secretValue(db: Db, key: Buffer, env: string, name: string, version: number): Buffer {
  const row = db.prepare('SELECT iv, data, tag FROM secret_versions WHERE env = ? AND name = ? AND version = ?').get(env, name, version) as { iv: Buffer; data: Buffer; tag: Buffer } | undefined;
  if (!row) throw new ConfigError(`version ${version} of secret "${name}" of ${env} is no longer kept (removed, or pruned once nothing could run it)`);
  return unseal(key, row, aad(env, name, version));
}

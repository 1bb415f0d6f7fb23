import { ConfigError } from '../errors.js';
import { describeValue } from '../config/describe-value.js';
import type { Db } from '../store/db.js';
import { checkText, orUndefined } from './check.js';
import { appendEvent } from './ledger.js';
import { getRelease } from './releases.js';
import type { ServiceRow } from './types.js';

interface Row {
  name: string;
  env: string;
  provider: string;
  release_id: number | null;
  replicas: number;
  listen_host: string | null;
  listen_port: number | null;
  protocol: 'http' | 'tcp';
  tls_cert: string | null;
  tls_key: string | null;
  created_at: string;
  updated_at: string;
  updated_by: string;
}

/** A service about to get its first desired state. */
export interface NewService {
  name: string;
  env: string;
  provider: string;
  replicas: number;
  listen?: { host: string; port: number } | undefined;
  /** What its router speaks (default http), and the TLS files it terminates with. */
  protocol?: 'http' | 'tcp';
  tls?: { cert: string; key: string } | undefined;
  actor: string;
}

/** A service's desired state, or undefined when it has none. */
export function getService(db: Db, name: string): ServiceRow | undefined {
  const row = db.prepare(`SELECT * FROM services WHERE name = ?`).get(name) as Row | undefined;
  return row ? toService(row) : undefined;
}

/** Every service with a desired state, by name. */
export function listServices(db: Db): ServiceRow[] {
  return (db.prepare(`SELECT * FROM services ORDER BY name`).all() as Row[]).map(toService);
}

/** Records a service's desired state the first time it is deployed (no release yet) and appends `service.created`; the existing row when it has one. */
export function ensureService(db: Db, input: NewService, now: Date = new Date()): ServiceRow {
  checkText('service', input.name);
  checkReplicas(input.replicas);
  return db
    .transaction((): ServiceRow => {
      const existing = getService(db, input.name);
      if (existing) return existing;
      const at = now.toISOString();
      db.prepare(
        `INSERT INTO services (name, env, provider, release_id, replicas, listen_host, listen_port, protocol, tls_cert, tls_key, created_at, updated_at, updated_by) VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(input.name, input.env, input.provider, input.replicas, input.listen?.host ?? null, input.listen?.port ?? null, input.protocol ?? 'http', input.tls?.cert ?? null, input.tls?.key ?? null, at, at, input.actor);
      appendEvent(db, { actor: input.actor, kind: 'service.created', service: input.name, data: { env: input.env, provider: input.provider, replicas: input.replicas } }, now);
      return getService(db, input.name)!;
    })
    .immediate();
}

/**
 * Sets the release a service should serve (undefined: none) and its replicas, and appends
 * `service.desired` with why (`deploy`, `rollback`, `deploy failed` …).
 */
export function setDesired(db: Db, name: string, desired: { releaseId: number | undefined; replicas: number; reason: string; actor: string }, now: Date = new Date()): ServiceRow {
  checkReplicas(desired.replicas);
  return db
    .transaction((): ServiceRow => {
      const service = mustGet(db, name);
      if (desired.releaseId !== undefined) {
        const release = getRelease(db, desired.releaseId);
        if (!release || release.service !== name) throw new ConfigError(`release: expected a release of service '${name}', got ${desired.releaseId}`);
      }
      db.prepare(`UPDATE services SET release_id = ?, replicas = ?, updated_at = ?, updated_by = ? WHERE name = ?`).run(desired.releaseId ?? null, desired.replicas, now.toISOString(), desired.actor, name);
      const data: Record<string, unknown> = { reason: desired.reason, replicas: desired.replicas };
      if (service.releaseId !== desired.releaseId) data.fromRelease = service.releaseId ?? null;
      appendEvent(db, { actor: desired.actor, kind: 'service.desired', service: name, ...(desired.releaseId !== undefined ? { releaseId: desired.releaseId } : {}), data }, now);
      return getService(db, name)!;
    })
    .immediate();
}

/** Changes only a service's replicas (no release, no rollout) and appends `service.scaled` with who and from → to. */
export function scaleService(db: Db, name: string, replicas: number, actor: string, now: Date = new Date()): ServiceRow {
  checkReplicas(replicas);
  return db
    .transaction((): ServiceRow => {
      const service = mustGet(db, name);
      if (service.replicas === replicas) return service;
      db.prepare(`UPDATE services SET replicas = ?, updated_at = ?, updated_by = ? WHERE name = ?`).run(replicas, now.toISOString(), actor, name);
      appendEvent(db, { actor, kind: 'service.scaled', service: name, ...(service.releaseId !== undefined ? { releaseId: service.releaseId } : {}), data: { from: service.replicas, to: replicas } }, now);
      return getService(db, name)!;
    })
    .immediate();
}

/** Records the address a service's router was bound to (chosen at its first start, then kept). */
export function setListen(db: Db, name: string, listen: { host: string; port: number }): void {
  mustGet(db, name);
  db.prepare(`UPDATE services SET listen_host = ?, listen_port = ? WHERE name = ?`).run(listen.host, listen.port, name);
}

/**
 * Records where a service's router serves now, after a relisten: its address and TLS files.
 * A change is a ledger event (`service.listen`); the desired state (release, replicas) is not
 * touched, so the control loop's round goes on.
 */
export function setServing(db: Db, name: string, serving: { listen: { host: string; port: number }; tls: { cert: string; key: string } | undefined }, by: { actor: string; now?: Date }): void {
  db.transaction(() => {
    const service = mustGet(db, name);
    const same = service.listen?.host === serving.listen.host && service.listen?.port === serving.listen.port && service.tls?.cert === serving.tls?.cert && service.tls?.key === serving.tls?.key;
    if (same) return;
    db.prepare(`UPDATE services SET listen_host = ?, listen_port = ?, tls_cert = ?, tls_key = ? WHERE name = ?`).run(serving.listen.host, serving.listen.port, serving.tls?.cert ?? null, serving.tls?.key ?? null, name);
    const address = (l: { host: string; port: number } | undefined) => (l ? `${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}` : null);
    appendEvent(db, { actor: by.actor, kind: 'service.listen', service: name, data: { from: address(service.listen), to: address(serving.listen), tls: serving.tls !== undefined } }, by.now);
  }).immediate();
}

function mustGet(db: Db, name: string): ServiceRow {
  const service = getService(db, name);
  if (!service) throw new ConfigError(`service '${name}' has no desired state: deploy it first`);
  return service;
}

function checkReplicas(replicas: number): void {
  if (!Number.isSafeInteger(replicas) || replicas < 0) throw new ConfigError(`replicas: expected a whole number of at least 0, got ${describeValue(replicas)}`);
}

function toService(row: Row): ServiceRow {
  return {
    name: row.name,
    env: row.env,
    provider: row.provider,
    releaseId: orUndefined(row.release_id),
    replicas: row.replicas,
    listen: row.listen_host !== null && row.listen_port !== null ? { host: row.listen_host, port: row.listen_port } : undefined,
    protocol: row.protocol,
    tls: row.tls_cert !== null && row.tls_key !== null ? { cert: row.tls_cert, key: row.tls_key } : undefined,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    updatedBy: row.updated_by,
  };
}

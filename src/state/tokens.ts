import { createHash, randomBytes } from 'node:crypto';
import { ENVIRONMENT_NAME, isEnvironmentName } from '../config/environments.js';
import { ConfigError } from '../errors.js';
import type { Db } from '../store/db.js';
import { checkText } from './check.js';
import { appendEvent } from './ledger.js';

/**
 * What a token may do: `read` (status, history, logs, drift, plans, metrics), `deploy:<env>`
 * (deploy, roll back, promote into, scale and drill that environment; reads too), `admin`
 * (everything).
 */
export type Scope = 'read' | 'admin' | `deploy:${string}`;

/** A named API token as stored: never the token itself, only its hash. */
export interface ApiToken {
  name: string;
  scopes: Scope[];
  createdBy: string;
  createdAt: string;
  revokedAt: string | undefined;
}

interface Row {
  name: string;
  hash: string;
  scopes: string;
  created_by: string;
  created_at: string;
  revoked_at: string | null;
}

const NAME_RE = /^[a-z0-9][a-z0-9_.-]{0,62}$/;

/** What a token name must look like, in an error's words. */
export const TOKEN_NAME = 'a token name of lowercase letters, digits, ".", "_" and "-" (at most 63)';

/** The scope a text names, or an error saying what a scope looks like. */
export function parseScope(text: string): Scope | { error: string } {
  if (text === 'read' || text === 'admin') return text;
  const env = /^deploy:(.*)$/.exec(text)?.[1];
  if (env !== undefined && isEnvironmentName(env)) return `deploy:${env}`;
  if (env !== undefined) return { error: `expected deploy:<env> with ${ENVIRONMENT_NAME}, got "${text}"` };
  return { error: `expected a scope: read, deploy:<env> or admin, got "${text}"` };
}

/** The sha256 of a token, as stored. Tokens are 32 random bytes, so a plain hash is enough: no dictionary can reach them. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

const toToken = (row: Row): ApiToken => ({ name: row.name, scopes: JSON.parse(row.scopes) as Scope[], createdBy: row.created_by, createdAt: row.created_at, revokedAt: row.revoked_at ?? undefined });

/**
 * Creates token `name` with `scopes` and returns it: the only time it is ever shown, since
 * only its hash is stored. A name in use (revoked or not) is refused. In the ledger
 * (`token.created`, without the token).
 */
export function createToken(db: Db, input: { name: string; scopes: Scope[]; actor: string }, now: Date = new Date()): { token: string; record: ApiToken } {
  if (!NAME_RE.test(input.name)) throw new ConfigError(`token name: expected ${TOKEN_NAME}, got "${input.name}"`);
  if (input.scopes.length === 0) throw new ConfigError('--scope: name at least one scope (read, deploy:<env> or admin)');
  const actor = checkText('actor', input.actor);
  const scopes = [...new Set(input.scopes)].sort();
  const token = `imago_${randomBytes(32).toString('base64url')}`;
  return db
    .transaction(() => {
      const existing = db.prepare('SELECT * FROM tokens WHERE name = ?').get(input.name) as Row | undefined;
      if (existing) throw new ConfigError(`token "${input.name}" exists already${existing.revoked_at ? ' (revoked; names are not reused, so the ledger stays unambiguous)' : ''}: choose another name`);
      db.prepare('INSERT INTO tokens (name, hash, scopes, created_by, created_at) VALUES (?, ?, ?, ?, ?)').run(input.name, tokenHash(token), JSON.stringify(scopes), actor, now.toISOString());
      appendEvent(db, { actor, kind: 'token.created', data: { name: input.name, scopes } }, now);
      return { token, record: toToken(db.prepare('SELECT * FROM tokens WHERE name = ?').get(input.name) as Row) };
    })
    .immediate();
}

/** Revokes token `name`: from now on every request with it gets 401. In the ledger (`token.revoked`). */
export function revokeToken(db: Db, name: string, actor: string, now: Date = new Date()): ApiToken {
  return db
    .transaction(() => {
      const row = db.prepare('SELECT * FROM tokens WHERE name = ?').get(name) as Row | undefined;
      if (!row) throw new ConfigError(`no token "${name}" (imago token ls lists them)`);
      if (row.revoked_at) return toToken(row);
      db.prepare('UPDATE tokens SET revoked_at = ? WHERE name = ?').run(now.toISOString(), name);
      appendEvent(db, { actor: checkText('actor', actor), kind: 'token.revoked', data: { name } }, now);
      return toToken(db.prepare('SELECT * FROM tokens WHERE name = ?').get(name) as Row);
    })
    .immediate();
}

/** Every token, oldest first (revoked ones too, marked). */
export function listTokens(db: Db): ApiToken[] {
  return (db.prepare('SELECT * FROM tokens ORDER BY created_at, name').all() as Row[]).map(toToken);
}

/** The live (not revoked) token a presented secret is, or undefined. */
export function tokenFor(db: Db, presented: string): ApiToken | undefined {
  const row = db.prepare('SELECT * FROM tokens WHERE hash = ? AND revoked_at IS NULL').get(tokenHash(presented)) as Row | undefined;
  return row ? toToken(row) : undefined;
}

/** Whether `scopes` allow reading (`read`), or changing environment `env` (`deploy`). */
export function allows(scopes: readonly Scope[], need: { kind: 'read' } | { kind: 'deploy'; env: string } | { kind: 'admin' }): boolean {
  if (scopes.includes('admin')) return true;
  if (need.kind === 'admin') return false;
  if (need.kind === 'read') return scopes.length > 0;
  return scopes.includes(`deploy:${need.env}`);
}

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { normaliseService } from '../config/normalise.js';
import { MAX_REPLICAS } from '../config/service-schema.js';
import type { ServiceSpec } from '../config/types.js';
import { ConfigError, DeployError, HttpError, ImageError, ImagoError, RouterError } from '../errors.js';
import { LockError } from '../state/errors.js';
import { IMAGO_VERSION } from '../version.js';
import type { LogQuery } from '../logs/log-store.js';
import type { PromotionPick } from '../core/promotion.js';
import type { PolicyText } from './environment-policy.js';
import { parsePublicKey } from '../sign/keys.js';
import type { ControlPlane } from './control-plane.js';
import { allows, type Scope } from '../state/tokens.js';
import { authorized, bearerOf } from './token.js';

const MAX_BODY = 1024 * 1024;

/** Who called: a named token (its name is the ledger's actor), or the state folder's own token. */
interface Caller {
  name: string;
  scopes: readonly Scope[];
  /** The state folder's token (`<home>/api-token`): admin, and the client names the actor. */
  home: boolean;
}

/** What a route needs of its caller's scopes: to read, or to change one environment (`what`: for the 403). */
type Need = { kind: 'read' } | { kind: 'deploy'; env: string; what: string };

/** A route's work: `actor` for the ledger, `admin` when the caller may set an environment's policy. */
type Handler = (params: string[], body: unknown, req: IncomingMessage, actor: string, admin: boolean) => Promise<unknown>;

const READ: Need = { kind: 'read' };

/**
 * The control plane's HTTP API: JSON in and out, every route but /v1/ping behind a bearer
 * token, one error handler that maps imago's errors to statuses. A token is the state
 * folder's own (admin), or a named one whose scopes say what it may do (src/state/tokens.ts):
 * a route that changes an environment needs `deploy:<env>` (or `admin`); every other, any
 * token. Refused: 403, and nothing changes.
 */
export function createApi(plane: ControlPlane, token: string): Server {
  /** A route that changes service `name` in the environment the body names (`key`: where in the body). */
  const changes = (verb: string, key: 'env' | 'to' = 'env') => ([name]: string[], body: unknown): Need => {
    const env = plane.envOf(plane.keyOf(name!, bodyEnv(body, key)));
    return { kind: 'deploy', env, what: `${verb} '${name}' in ${env}` };
  };
  const routes: Array<[string, RegExp, (params: string[], body: unknown) => Need, Handler]> = [
    ['GET', /^\/v1\/status$/, () => READ, async () => plane.status()],
    ['GET', /^\/v1\/services\/([a-z0-9._/-]+)\/history$/, () => READ, async ([name], _body, req) => plane.history(plane.keyOf(name!, queryEnv(req)))],
    ['POST', /^\/v1\/services\/([a-z0-9._/-]+)\/plan$/, () => READ, async ([name], body) => plane.plan(serviceOf(plane, name!, body), imageOf(body))],
    ['POST', /^\/v1\/services\/([a-z0-9._/-]+)\/deploy$/, changes('deploy'), async ([name], body, _req, actor, admin) => plane.deploy(serviceOf(plane, name!, body), imageOf(body), actor, { force: flagOf(body, 'force'), policy: policyOf(body), admin })],
    ['POST', /^\/v1\/services\/([a-z0-9._/-]+)\/promote$/, changes('promote', 'to'), async ([name], body, _req, actor, admin) => plane.promote(promotionOf(plane, name!, body), actor, admin)],
    ['POST', /^\/v1\/services\/([a-z0-9._/-]+)\/rollback$/, changes('roll back'), async ([name], body, _req, actor) => plane.rollback(plane.keyOf(name!, bodyEnv(body)), toOf(body), actor)],
    ['POST', /^\/v1\/services\/([a-z0-9._/-]+)\/scale$/, changes('scale'), async ([name], body, _req, actor) => plane.scale(plane.keyOf(name!, bodyEnv(body)), replicasOf(name!, body), actor)],
    ['POST', /^\/v1\/services\/([a-z0-9._/-]+)\/drill$/, changes('run a drill on'), async ([name], body, _req, actor) => plane.drill(plane.keyOf(name!, bodyEnv(body)), killOf(body), actor)],
    ['GET', /^\/v1\/services\/([a-z0-9._/-]+)\/logs$/, () => READ, async ([name], _body, req) => plane.logsOf(logQueryOf(plane.keyOf(name!, queryEnv(req)), new URL(req.url ?? '/', 'http://imago').searchParams))],
    ['GET', /^\/v1\/drift$/, () => READ, async (_params, _body, req) => {
      const service = new URL(req.url ?? '/', 'http://imago').searchParams.get('service');
      return plane.drift(service ? plane.keyOf(service, queryEnv(req)) : undefined);
    }],
  ];
  /** The caller a request's bearer token is, or a 401. */
  const callerOf = (req: IncomingMessage): Caller => {
    if (authorized(req.headers.authorization, token)) return { name: 'home', scopes: ['admin'], home: true };
    const named = plane.tokenFor(bearerOf(req.headers.authorization));
    if (named) return { name: named.name, scopes: named.scopes, home: false };
    throw new HttpError(401, 'missing, wrong or revoked API token: send Authorization: Bearer <the state folder\'s api-token, or a token from imago token create>');
  };
  return createServer((req, res) => {
    void (async () => {
      try {
        const url = new URL(req.url ?? '/', 'http://imago');
        if (req.method === 'GET' && url.pathname === '/v1/ping') return send(res, 200, { ok: true, version: IMAGO_VERSION });
        const caller = callerOf(req);
        // Prometheus' text format, not JSON (a scrape sends the token as any client does).
        if (req.method === 'GET' && url.pathname === '/metrics') {
          const metrics = await plane.metrics();
          res.writeHead(200, { 'content-type': metrics.contentType });
          res.end(metrics.text);
          return;
        }
        const match = routes.find(([method, pattern]) => method === req.method && pattern.test(url.pathname));
        if (!match) throw new HttpError(404, `no route ${req.method} ${url.pathname}`);
        const params = match[1].exec(url.pathname)!.slice(1);
        const body = req.method === 'POST' ? await readJson(req) : undefined;
        const need = match[2](params, body);
        if (!allows(caller.scopes, need)) {
          const what = need.kind === 'deploy' ? `${need.what}: that needs deploy:${need.env} or admin` : 'read: that needs a scope';
          throw new HttpError(403, `token '${caller.name}' (scopes: ${caller.scopes.join(', ')}) may not ${what}`);
        }
        send(res, 200, await match[3](params, body, req, caller.home ? actorOf(req) : caller.name, caller.scopes.includes('admin')));
      } catch (error) {
        const [status, message] = describe(error);
        send(res, status, { error: message });
      }
    })();
  });
}

/** Starts the API on `host:port`; resolves with the bound address. */
export async function listen(server: Server, host: string, port: number): Promise<{ host: string; port: number }> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(new ImagoError(`failed to listen on ${host}:${port}: ${error.code === 'EADDRINUSE' ? 'the port is in use' : error.message}`, { cause: error })),
    );
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  return { host: address.address, port: address.port };
}

/** The one error handler: an error's HTTP status and message. */
function describe(error: unknown): [number, string] {
  if (error instanceof HttpError) return [error.status, error.message];
  if (error instanceof ConfigError) return [400, error.message];
  if (error instanceof ImageError) return [error.notFound ? 404 : error.exitCode === 2 ? 400 : 500, error.message];
  if (error instanceof LockError) return [409, error.message];
  if (error instanceof RouterError && error.inUse) return [409, error.message];
  if (error instanceof RouterError && error.badInput) return [400, error.message];
  if (error instanceof DeployError && / did not happen within \d+s( \(.*\))?$/.test(error.message)) return [504, error.message];
  if (error instanceof ImagoError) return [500, error.message];
  return [500, `unexpected: ${(error as Error).message ?? String(error)}`];
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(`${JSON.stringify(body)}\n`);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, `request body over ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'request body is not valid JSON');
  }
}

/**
 * The service a client sent, as written in a config file (`services.<name>`, with its
 * environment's overrides laid over it), validated and normalised here with the config's own
 * schema: normalised once, at the server's edge. Named by its key in the body's `env`.
 */
function serviceOf(plane: ControlPlane, name: string, body: unknown): ServiceSpec {
  const raw = (body as { service?: unknown } | undefined)?.service;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new HttpError(400, `expected the body's "service" to be service '${name}' as written in the config (an object with "image", "replicas" …)`);
  return { ...normaliseService(name, raw), name: plane.keyOf(name, bodyEnv(body)) };
}

/** The environment a POST names (`env`, or another `key`), or undefined for the control plane's home environment. */
function bodyEnv(body: unknown, key: 'env' | 'to' = 'env'): string | undefined {
  const env = (body as Record<string, unknown> | undefined)?.[key];
  if (env === undefined || env === null) return undefined;
  if (typeof env !== 'string') throw new HttpError(400, `expected "${key}": an environment name, got ${JSON.stringify(env)}`);
  return env;
}

/** The environment a GET names (`?env=`), or undefined. */
function queryEnv(req: IncomingMessage): string | undefined {
  return new URL(req.url ?? '/', 'http://imago').searchParams.get('env') || undefined;
}

/**
 * A promotion: `from` and `to` (environments), `service` as `to` runs it (its key from
 * `to`), which release of `from` (`release`, or `image`: a digest or reference, else the live
 * one), the target's policy as the client's config says it, and `force` with a `reason`.
 */
function promotionOf(plane: ControlPlane, name: string, body: unknown) {
  const b = (body ?? {}) as Record<string, unknown>;
  const env = (key: 'from' | 'to'): string => {
    const value = b[key];
    if (typeof value !== 'string' || value === '') throw new HttpError(400, `expected "${key}": an environment name, got ${JSON.stringify(value)}`);
    return value;
  };
  const from = env('from');
  const to = env('to');
  const service = serviceOf(plane, name, { service: b.service, env: to });
  if (b.release !== undefined && b.image !== undefined) throw new HttpError(400, 'promote: name a release or an image, not both');
  let pick: PromotionPick = { kind: 'live' };
  if (b.release !== undefined) {
    const version = b.release;
    if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) throw new HttpError(400, `expected "release": a release number, got ${JSON.stringify(version)}`);
    pick = { kind: 'version', version };
  } else if (b.image !== undefined) {
    pick = { kind: 'digest', digest: plane.resolveImage(imageOf(b)) };
  }
  const reason = b.reason;
  if (reason !== undefined && (typeof reason !== 'string' || reason.length > 500)) throw new HttpError(400, 'expected "reason": text of at most 500 characters');
  return { name, from, to, service, pick, force: flagOf(b, 'force'), reason: reason as string | undefined, policy: policyOf(b) };
}

/** At most this many trusted keys in a policy. */
const MAX_KEYS = 32;

/** The longest minSoak a client may ask for: a year. */
const MAX_SOAK_MS = 365 * 86_400_000;

/**
 * The target environment's policy as the client's config says it (`policy`: `minSoak` in ms,
 * and `requireSignature.keys`, PEM public keys, each checked here), or undefined when it sent
 * none (a config without environments). The server decides what holds (environment-policy.ts).
 */
function policyOf(body: unknown): PolicyText | undefined {
  const policy = (body as { policy?: unknown } | undefined)?.policy as { minSoak?: unknown; requireSignature?: { keys?: unknown } } | undefined | null;
  if (policy === undefined || policy === null) return undefined;
  const minSoak = policy.minSoak ?? 0;
  if (typeof minSoak !== 'number' || !Number.isInteger(minSoak) || minSoak < 0 || minSoak > MAX_SOAK_MS) throw new HttpError(400, `expected "policy.minSoak": milliseconds from 0 to ${MAX_SOAK_MS}, got ${JSON.stringify(minSoak)}`);
  if (policy.requireSignature === undefined) return { minSoak };
  const keys = policy.requireSignature?.keys;
  if (!Array.isArray(keys) || keys.length === 0 || keys.length > MAX_KEYS || !keys.every((k) => typeof k === 'string')) {
    throw new HttpError(400, `expected "policy.requireSignature": { "keys": [1 to ${MAX_KEYS} PEM public keys] }`);
  }
  keys.forEach((pem: string, i) => {
    try {
      parsePublicKey(pem, `policy.requireSignature.keys[${i}]`);
    } catch (error) {
      throw new HttpError(400, (error as Error).message, { cause: error });
    }
  });
  return { minSoak, keys };
}

function flagOf(body: unknown, key: string): boolean {
  const value = (body as Record<string, unknown> | undefined)?.[key];
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean') throw new HttpError(400, `expected "${key}": true or false, got ${JSON.stringify(value)}`);
  return value;
}

function replicasOf(name: string, body: unknown): number {
  const replicas = (body as { replicas?: unknown } | undefined)?.replicas;
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0 || replicas > MAX_REPLICAS) {
    throw new HttpError(400, `services.${name}.replicas: expected a whole number of instances from 0 to ${MAX_REPLICAS}, got ${JSON.stringify(replicas)}`);
  }
  return replicas;
}

/**
 * A logs query from the URL: `release`, `instance`, `since` and `until` (ms since the epoch),
 * `grep`, `tail`, `after` (an id), `limit`. Each number is checked and named when wrong.
 */
export function logQueryOf(service: string, params: URLSearchParams): LogQuery {
  const whole = (key: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined => {
    const text = params.get(key);
    if (text === null || text === '') return undefined;
    const value = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min || value > max) throw new HttpError(400, `logs: '${key}' must be a whole number from ${min} to ${max}, got '${text}'`);
    return value;
  };
  const stream = params.get('stream') || undefined;
  if (stream !== undefined && stream !== 'stdout' && stream !== 'stderr') throw new HttpError(400, `logs: 'stream' must be stdout or stderr, got '${stream}'`);
  return {
    service,
    release: whole('release', 1),
    instance: params.get('instance') || undefined,
    stream,
    since: whole('since', 0),
    until: whole('until', 0),
    grep: params.get('grep') || undefined,
    tail: whole('tail', 0, 1_000_000),
    afterId: whole('after', 0),
    limit: whole('limit', 1, 1_000_000),
  };
}

function killOf(body: unknown): number | 'all' {
  const kill = (body as { kill?: unknown } | undefined)?.kill ?? 1;
  if (kill === 'all') return 'all';
  if (typeof kill !== 'number' || !Number.isInteger(kill) || kill < 1) throw new HttpError(400, `expected "kill": a number of instances of at least 1, or "all", got ${JSON.stringify(kill)}`);
  return kill;
}

function imageOf(body: unknown): string {
  const image = (body as { image?: unknown } | undefined)?.image;
  if (typeof image !== 'string' || image === '') throw new HttpError(400, 'expected "image": an image reference like "web:3" or a digest');
  return image;
}

function toOf(body: unknown): number | undefined {
  const to = (body as { to?: unknown } | undefined)?.to;
  if (to === undefined || to === null) return undefined;
  if (typeof to !== 'number' || !Number.isInteger(to) || to < 1) throw new HttpError(400, `expected "to": a release number, got ${JSON.stringify(to)}`);
  return to;
}

function actorOf(req: IncomingMessage): string {
  const actor = req.headers['x-imago-actor'];
  return typeof actor === 'string' && /^[\w.@-]{1,64}$/.test(actor) ? actor : 'api';
}

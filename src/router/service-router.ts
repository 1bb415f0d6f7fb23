import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { Pool } from 'undici';
import { ProviderError } from '../errors.js';
import type { RouterControl, RouterStats, RouterTarget } from './router-control.js';

export type { RouterStats, RouterTarget } from './router-control.js';

interface Upstream {
  target: RouterTarget;
  pool: Pool;
  routed: boolean;
  inflight: number;
  requests: number;
  /** A connection to it failed: it gets no new request before this time, unless no other instance is left. */
  downUntil: number;
}

/** Headers that are the connection's, not the request's (and `expect`: the router answers 100-continue itself). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect']);
/** Methods RFC 9110 calls idempotent: sending one twice does what sending it once does. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
const MAX_ATTEMPTS = 3;
/** Request bodies up to this size are read whole before they are sent, so they can be sent again. */
const REPLAYABLE_BODY = 1024 * 1024;
/** How long an instance whose connection failed gets no new requests (the control loop decides for good). */
const DOWN_MS = 1_000;

/**
 * One service's reverse proxy on a stable address, in the control plane's process. It sends
 * each request to the routed instance with the fewest requests in flight, over kept-alive
 * connections, passing the Host header on and appending X-Forwarded-For. Unrouting an
 * instance stops new requests at once while its in-flight ones finish.
 *
 * When an instance fails a request before answering it, the request goes to another one if
 * that cannot do it twice: when the connection was never made (refused: it never arrived),
 * or when it was cut before any answer and the request is idempotent (GET, PUT, DELETE …) or
 * carries an `Idempotency-Key`. A POST cut mid-flight is answered 502: it may have been done.
 * Bodies up to 1 MiB are read first so they can be sent again; larger ones are streamed and
 * never resent. An instance whose connection failed gets no new request for a second.
 */
export class ServiceRouter implements RouterControl {
  readonly kind = 'in-process (node)';
  private readonly upstreams = new Map<string, Upstream>();
  private readonly idleListeners = new Set<(id: string) => void>();
  private server: Server | undefined;
  private requests = 0;
  private failed = 0;
  private retried = 0;

  constructor(
    readonly service: string,
    private readonly listen: { host: string; port: number },
  ) {}

  /** Starts listening; resolves with the bound address (port 0 picks a free one). */
  async start(): Promise<{ host: string; port: number }> {
    const server = createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) =>
        reject(new ProviderError(`failed to listen on ${this.listen.host}:${this.listen.port} for service '${this.service}': ${error.code === 'EADDRINUSE' ? 'the port is in use' : error.message}`, { cause: error })),
      );
      server.listen(this.listen.port, this.listen.host, () => resolve());
    });
    this.server = server;
    const address = server.address() as AddressInfo;
    return { host: address.address, port: address.port };
  }

  /** Sends new requests to `target` too. */
  route(target: RouterTarget): void {
    const existing = this.upstreams.get(target.id);
    if (existing) {
      existing.routed = true;
      return;
    }
    const pool = new Pool(`http://${target.host}:${target.port}`, { connections: 64, keepAliveTimeout: 4_000, pipelining: 1 });
    this.upstreams.set(target.id, { target, pool, routed: true, inflight: 0, requests: 0, downUntil: 0 });
  }

  /** Sends no new request to `id`; the ones in flight go on. */
  unroute(id: string): void {
    const upstream = this.upstreams.get(id);
    if (!upstream) return;
    upstream.routed = false;
    if (upstream.inflight === 0) this.tellIdle(id);
  }

  /** Forgets `id`: its connections close once the requests still in flight on them finish. */
  forget(id: string): void {
    const upstream = this.upstreams.get(id);
    if (!upstream) return;
    this.upstreams.delete(id);
    upstream.pool.close().catch(() => undefined);
  }

  /** Requests in flight to `id`. */
  inflight(id: string): number {
    return this.upstreams.get(id)?.inflight ?? 0;
  }

  /** The ids new requests go to. */
  routed(): string[] {
    return [...this.upstreams.values()].filter((u) => u.routed).map((u) => u.target.id);
  }

  /** Calls `listener` when an unrouted instance's last in-flight request ends. */
  onIdle(listener: (id: string) => void): () => void {
    this.idleListeners.add(listener);
    return () => this.idleListeners.delete(listener);
  }

  /** Counts so far. */
  stats(): RouterStats {
    return {
      requests: this.requests,
      failed: this.failed,
      retried: this.retried,
      targets: [...this.upstreams.values()].map((u) => ({ id: u.target.id, routed: u.routed, inflight: u.inflight, requests: u.requests })),
    };
  }

  /** Stops listening and closes every upstream connection. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
    }
    await Promise.all([...this.upstreams.values()].map((u) => u.pool.destroy().catch(() => undefined)));
    this.upstreams.clear();
  }

  private tellIdle(id: string): void {
    for (const listener of [...this.idleListeners]) listener(id);
  }

  /** The routed instance with the fewest requests in flight, preferring ones not marked down. */
  private pick(exclude: Set<string>): Upstream | undefined {
    const now = Date.now();
    let best: Upstream | undefined;
    for (const upstream of this.upstreams.values()) {
      if (!upstream.routed || exclude.has(upstream.target.id)) continue;
      if (!best) {
        best = upstream;
        continue;
      }
      const down = upstream.downUntil > now;
      const bestDown = best.downUntil > now;
      if (down !== bestDown) {
        if (bestDown) best = upstream;
        continue;
      }
      if (upstream.inflight < best.inflight || (upstream.inflight === best.inflight && upstream.requests < best.requests)) best = upstream;
    }
    return best;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.requests++;
    const method = req.method ?? 'GET';
    const headers = forwardHeaders(req);
    // Whatever the method, a request that has a body (a length, or chunks) sends it on.
    let body: Buffer | IncomingMessage | null = null;
    let replayable = true;
    const length = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
    const chunked = req.headers['transfer-encoding'] !== undefined;
    if ((length !== undefined && length > 0) || chunked) {
      if (!chunked && length !== undefined && Number.isFinite(length) && length <= REPLAYABLE_BODY) {
        try {
          body = await readBody(req);
        } catch {
          return; // the client went away before sending its body
        }
      } else {
        body = req;
        replayable = false;
      }
    }
    const resendable = IDEMPOTENT.has(method) || req.headers['idempotency-key'] !== undefined;
    const tried = new Set<string>();
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const upstream = this.pick(tried);
      if (!upstream) break;
      tried.add(upstream.target.id);
      upstream.inflight++;
      upstream.requests++;
      let responded = false;
      try {
        const answer = await upstream.pool.request({ path: req.url ?? '/', method: method as 'GET', headers, body });
        responded = true;
        res.writeHead(answer.statusCode, responseHeaders(answer.headers, upstream.target.id));
        await pipeline(answer.body, res);
        return;
      } catch (error) {
        if (responded || res.headersSent) {
          this.failed++;
          res.destroy(error as Error);
          return;
        }
        const refused = isRefused(error);
        if (refused || isCut(error)) upstream.downUntil = Date.now() + DOWN_MS;
        // Sent again only when the instance cannot have done it, or doing it twice is harmless.
        if (!replayable || !(refused || (isCut(error) && resendable))) {
          this.fail(res, 502, `instance ${upstream.target.id} of service '${this.service}' failed: ${(error as Error).message}`);
          return;
        }
        this.retried++;
      } finally {
        upstream.inflight--;
        if (upstream.inflight === 0 && !upstream.routed) this.tellIdle(upstream.target.id);
      }
    }
    this.fail(res, 503, tried.size === 0 ? `service '${this.service}' has no healthy instance` : `no instance of service '${this.service}' accepted the request`);
  }

  private fail(res: ServerResponse, status: number, message: string): void {
    this.failed++;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.writeHead(status, { 'content-type': 'application/json', 'x-imago-router': this.service });
    res.end(`${JSON.stringify({ error: message })}\n`);
  }
}

/** Reads a request's whole body. */
async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The request's headers minus hop-by-hop ones, with X-Forwarded-* added; Host is kept. */
function forwardHeaders(req: IncomingMessage): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    out[name] = value;
  }
  const client = req.socket.remoteAddress ?? '';
  const prior = req.headers['x-forwarded-for'];
  out['x-forwarded-for'] = prior ? `${Array.isArray(prior) ? prior.join(', ') : prior}, ${client}` : client;
  if (req.headers.host) out['x-forwarded-host'] = req.headers.host;
  out['x-forwarded-proto'] = 'http';
  return out;
}

/** The instance's response headers minus hop-by-hop ones, naming the instance that answered. */
function responseHeaders(headers: Record<string, string | string[] | undefined>, id: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  out['x-imago-instance'] = id;
  return out;
}

function codeOf(error: unknown): string | undefined {
  return (error as { code?: string }).code ?? (error as { cause?: { code?: string } }).cause?.code;
}

/** The connection was never made: the request never reached the instance. */
function isRefused(error: unknown): boolean {
  const code = codeOf(error);
  return code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'UND_ERR_CONNECT_TIMEOUT';
}

/** The connection broke before any answer came (the instance died, or its port proxy hung up). */
function isCut(error: unknown): boolean {
  const code = codeOf(error);
  return code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE' || code === 'UND_ERR_CLOSED';
}

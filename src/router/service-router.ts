import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { Pool } from 'undici';
import { ProviderError } from '../errors.js';

/** An instance the router can send requests to. */
export interface RouterTarget {
  id: string;
  host: string;
  port: number;
}

/** What the router has seen, overall and per instance. */
export interface RouterStats {
  requests: number;
  /** Requests answered 502/503 by the router itself (no instance could answer). */
  failed: number;
  targets: Array<{ id: string; routed: boolean; inflight: number; requests: number }>;
}

interface Upstream {
  target: RouterTarget;
  pool: Pool;
  routed: boolean;
  inflight: number;
  requests: number;
  /** Called when inflight drops to zero (drain waiters). */
  idle: Array<() => void>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS']);
const MAX_ATTEMPTS = 3;

/**
 * One service's reverse proxy on a stable address. It sends each request to the routed
 * instance with the fewest requests in flight, streaming bodies both ways over kept-alive
 * connections, passing the Host header on and appending X-Forwarded-For. Unrouting an
 * instance stops new requests at once while its in-flight ones finish (`drain`). An
 * idempotent request whose instance refuses the connection is retried on another one.
 */
export class ServiceRouter {
  private readonly upstreams = new Map<string, Upstream>();
  private server: Server | undefined;
  private requests = 0;
  private failed = 0;

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
    this.upstreams.set(target.id, { target, pool, routed: true, inflight: 0, requests: 0, idle: [] });
  }

  /** Sends no new request to `id`; the ones in flight go on. */
  unroute(id: string): void {
    const upstream = this.upstreams.get(id);
    if (upstream) upstream.routed = false;
  }

  /**
   * Waits until `id` has nothing in flight (after `unroute`), or `timeoutMs` passes. Resolves
   * true when it drained, false on timeout. Then forgets it.
   */
  async drain(id: string, timeoutMs: number): Promise<boolean> {
    const upstream = this.upstreams.get(id);
    if (!upstream) return true;
    upstream.routed = false;
    const drained =
      upstream.inflight === 0 ||
      (await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), timeoutMs);
        upstream.idle.push(() => {
          clearTimeout(timer);
          resolve(true);
        });
      }));
    this.upstreams.delete(id);
    // Not awaited: after a timed-out drain the last requests may still finish during the stop's grace period.
    upstream.pool.close().catch(() => undefined);
    return drained;
  }

  /** Requests in flight to `id`. */
  inflight(id: string): number {
    return this.upstreams.get(id)?.inflight ?? 0;
  }

  /** The ids new requests go to. */
  routed(): string[] {
    return [...this.upstreams.values()].filter((u) => u.routed).map((u) => u.target.id);
  }

  /** Counts so far. */
  stats(): RouterStats {
    return {
      requests: this.requests,
      failed: this.failed,
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

  private pick(exclude: Set<string>): Upstream | undefined {
    let best: Upstream | undefined;
    for (const upstream of this.upstreams.values()) {
      if (!upstream.routed || exclude.has(upstream.target.id)) continue;
      if (!best || upstream.inflight < best.inflight || (upstream.inflight === best.inflight && upstream.requests < best.requests)) best = upstream;
    }
    return best;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.requests++;
    const method = req.method ?? 'GET';
    const headers = forwardHeaders(req);
    const tried = new Set<string>();
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const upstream = this.pick(tried);
      if (!upstream) break;
      tried.add(upstream.target.id);
      upstream.inflight++;
      upstream.requests++;
      let responded = false;
      try {
        const answer = await upstream.pool.request({
          path: req.url ?? '/',
          method: method as 'GET',
          headers,
          body: method === 'GET' || method === 'HEAD' ? null : req,
        });
        responded = true;
        res.writeHead(answer.statusCode, responseHeaders(answer.headers, upstream.target.id));
        await pipeline(answer.body, res);
        return;
      } catch (error) {
        if (responded || res.headersSent) {
          res.destroy(error as Error);
          return;
        }
        // Nothing reached the client yet: an idempotent request may go to another instance.
        if (!IDEMPOTENT.has(method) || !isConnectError(error)) {
          this.fail(res, 502, `instance ${upstream.target.id} of service '${this.service}' failed: ${(error as Error).message}`);
          return;
        }
      } finally {
        upstream.inflight--;
        if (upstream.inflight === 0) for (const wake of upstream.idle.splice(0)) wake();
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

/** True for errors where the instance never took the request (so retrying cannot repeat it). */
function isConnectError(error: unknown): boolean {
  const code = (error as { code?: string }).code ?? (error as { cause?: { code?: string } }).cause?.code;
  return code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE' || code === 'UND_ERR_CLOSED';
}

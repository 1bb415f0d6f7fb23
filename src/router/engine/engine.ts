import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer } from 'node:tls';
import { Pool } from 'undici';
import { RouterError } from '../../errors.js';
import type { RouterSnapshot, RouterStats, RouterTarget } from '../router-control.js';
import { readTlsPair } from '../tls.js';
import { Balancer, type Upstream } from './balancer.js';
import { proxyRequest, type HttpProxyHost } from './http-proxy.js';
import { proxyConnection, type TcpHost } from './tcp-proxy.js';
import { proxyUpgrade, type UpgradeHost } from './upgrade.js';

/** How a router listens and what it speaks. */
export interface ListenSpec {
  host: string;
  port: number;
  /** `http` (requests, balanced by request) or `tcp` (connections, balanced by connection). */
  protocol: 'http' | 'tcp';
  /** Files of the PEM certificate chain and its key: the router terminates TLS. */
  tls?: { cert: string; key: string } | undefined;
}

/**
 * The built-in data plane's engine: one service's proxy on a stable address, HTTP or TCP,
 * with or without TLS. It balances by smooth weighted round-robin over the routed targets
 * (by release weight), keeps connections to each target alive in a pool, passes upgrades
 * through, retries what cannot be done twice, and counts per target. Its control methods
 * are synchronous; `InProcessRouter` and the router process wrap them.
 */
export class RouterEngine {
  readonly balancer = new Balancer();
  readonly counters = { requests: 0, failed: 0, retried: 0 };
  readonly proto: 'http' | 'https';
  private readonly pools = new Map<string, Pool>();
  private readonly open = new Map<string, Set<Duplex>>();
  private server: HttpServer | TcpServer | undefined;
  /** What the proxies see of the engine. */
  private readonly host: HttpProxyHost & UpgradeHost & TcpHost;

  constructor(
    readonly service: string,
    readonly listen: ListenSpec,
  ) {
    this.proto = listen.tls ? 'https' : 'http';
    this.host = {
      service,
      proto: this.proto,
      counters: this.counters,
      pick: (exclude: ReadonlySet<string>) => this.balancer.pick(exclude, Date.now()),
      poolOf: (upstream: Upstream) => {
        let pool = this.pools.get(upstream.target.id);
        if (!pool) {
          pool = new Pool(`http://${upstream.target.host}:${upstream.target.port}`, { connections: 128, keepAliveTimeout: 4_000, pipelining: 1 });
          this.pools.set(upstream.target.id, pool);
        }
        return pool;
      },
      tunnels: (upstream: Upstream) => {
        let set = this.open.get(upstream.target.id);
        if (!set) {
          set = new Set<Duplex>();
          this.open.set(upstream.target.id, set);
        }
        return set;
      },
    };
  }

  /** Starts listening; resolves with the bound address (port 0 picks a free one). */
  async start(): Promise<{ host: string; port: number }> {
    const server = this.makeServer(this.listen.tls ? readTlsPair(this.service, this.listen.tls) : undefined);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        const inUse = error.code === 'EADDRINUSE';
        reject(new RouterError(`failed to listen on ${this.listen.host}:${this.listen.port} for service '${this.service}': ${inUse ? 'the port is in use' : error.message}`, { cause: error, inUse }));
      });
      server.listen({ port: this.listen.port, host: this.listen.host, backlog: 1024 }, () => resolve());
    });
    this.server = server;
    const address = server.address() as AddressInfo;
    return { host: address.address, port: address.port };
  }

  /** Sends new requests to `target` too. */
  route(target: RouterTarget): void {
    const { upstream } = this.balancer.route(target);
    // Moved (a new address for the same id): its old connections go.
    if (upstream.target.host !== target.host || upstream.target.port !== target.port) {
      upstream.target.host = target.host;
      upstream.target.port = target.port;
      this.closePool(target.id);
    }
  }

  /** Sends no new request to `id`; the ones in flight go on. */
  unroute(id: string): void {
    this.balancer.unroute(id);
  }

  /** Forgets `id`: its idle connections close, requests still in flight may finish, open tunnels are cut. */
  forget(id: string): void {
    if (!this.balancer.forget(id)) return;
    this.closePool(id);
    for (const socket of this.open.get(id) ?? []) socket.destroy();
    this.open.delete(id);
  }

  /** Sets the share of new requests by release. */
  setWeights(weights: Record<string, number> | undefined): void {
    this.balancer.setWeights(weights);
  }

  /** What it routes now. */
  snapshot(): RouterSnapshot {
    return this.balancer.snapshot();
  }

  /** Counts so far. */
  stats(): RouterStats {
    return { ...this.counters, targets: this.balancer.stats() };
  }

  /** Stops listening, closes every connection. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ('closeAllConnections' in server) server.closeAllConnections();
      });
    }
    for (const set of this.open.values()) for (const socket of set) socket.destroy();
    this.open.clear();
    await Promise.all([...this.pools.values()].map((pool) => pool.destroy().catch(() => undefined)));
    this.pools.clear();
  }

  private makeServer(tls: { cert: string; key: string } | undefined): HttpServer | TcpServer {
    const { protocol } = this.listen;
    if (protocol === 'tcp') {
      const onConnection = (socket: Socket) => proxyConnection(this.host, socket);
      const server = tls ? tlsServer(this.service, () => createTlsServer({ cert: tls.cert, key: tls.key }, onConnection)) : createTcpServer({ noDelay: true }, onConnection);
      this.trackSockets(server);
      return server;
    }
    const onRequest = (req: IncomingMessage, res: ServerResponse) => void proxyRequest(this.host, req, res);
    const server = tls ? tlsServer(this.service, () => createHttpsServer({ cert: tls.cert, key: tls.key, keepAliveTimeout: 5_000, noDelay: true }, onRequest)) : createHttpServer({ keepAliveTimeout: 5_000, noDelay: true }, onRequest);
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => proxyUpgrade(this.host, req, socket, head));
    server.on('clientError', (_error, socket: Duplex) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
      else socket.destroy();
    });
    this.trackSockets(server);
    return server;
  }

  /** A TLS handshake that fails (a client without the CA, a port scanner) is no error of the router's. */
  private trackSockets(server: HttpServer | TcpServer): void {
    server.on('tlsClientError', () => undefined);
  }

  private closePool(id: string): void {
    const pool = this.pools.get(id);
    if (!pool) return;
    this.pools.delete(id);
    pool.close().catch(() => undefined);
  }
}

/** A TLS server, or a RouterError saying what is wrong with the certificate or key. */
function tlsServer<T>(service: string, make: () => T): T {
  try {
    return make();
  } catch (error) {
    throw new RouterError(`service '${service}': the TLS certificate and key do not work: ${(error as Error).message}`, { cause: error, badInput: true });
  }
}

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
  private readonly pools = new Map<string, Pool>();
  private readonly open = new Map<string, Set<Duplex>>();
  /** The certificate and key served now (their contents), when TLS is on. */
  private pair: { cert: string; key: string } | undefined;
  /** The server bound to the address: it accepts the connections. */
  private listener: HttpServer | TcpServer | undefined;
  /** The server that serves new connections: the listener, or the one it hands them to since a relisten at the same address. */
  private server: HttpServer | TcpServer | undefined;
  /** Servers replaced by a relisten, finishing the connections they have. */
  private readonly retired = new Set<HttpServer | TcpServer>();
  /** What the proxies see of the engine. */
  private readonly host: HttpProxyHost & UpgradeHost & TcpHost;

  constructor(
    readonly service: string,
    private listenSpec: ListenSpec,
  ) {
    this.host = {
      service,
      proto: listenSpec.tls ? 'https' : 'http',
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

  /** How it listens now (a relisten changes it). */
  get listen(): ListenSpec {
    return this.listenSpec;
  }

  /** Starts listening; resolves with the bound address (port 0 picks a free one). */
  async start(): Promise<{ host: string; port: number }> {
    this.pair = this.listen.tls ? readTlsPair(this.service, this.listen.tls) : undefined;
    const server = this.makeServer(this.pair);
    await this.bind(server, this.listen);
    this.listener = server;
    this.server = server;
    const address = server.address() as AddressInfo;
    this.listenSpec = { ...this.listen, port: address.port };
    return { host: address.address, port: address.port };
  }

  /**
   * Serves `listen` from now on, with nothing refused. At the same address (new TLS files, or
   * TLS on or off) the bound socket stays and hands each new connection to a new server; at a
   * new address the new server is bound first, then the old address stops taking connections.
   * Either way the old server finishes what it has: its idle keep-alive connections are closed
   * (their clients come back on a new one), and the rest end as their requests do. Bad TLS
   * files or an address in use leave it serving as it was.
   */
  async relisten(listen: ListenSpec): Promise<{ host: string; port: number }> {
    if (!this.listener || !this.server) throw new RouterError(`the router of service '${this.service}' is not serving: start it first`);
    if (listen.protocol !== this.listen.protocol) throw new RouterError(`the router of service '${this.service}' serves ${this.listen.protocol}, and cannot be changed to ${listen.protocol} in place`, { badInput: true });
    const pair = listen.tls ? readTlsPair(this.service, listen.tls) : undefined;
    const same = listen.host === this.listen.host && listen.port === this.listen.port;
    if (same && pair?.cert === this.pair?.cert && pair?.key === this.pair?.key) {
      // Nothing served would change (the same address, the same pair, or none): nothing to do.
      this.listenSpec = { ...listen, port: this.listen.port };
      return { host: listen.host, port: this.listen.port };
    }
    const next = this.makeServer(pair, listen);
    const old = this.server;
    if (same) {
      // The socket stays bound: its connections go to the new server from now on.
      this.listener.removeAllListeners('connection');
      this.listener.on('connection', (socket: Socket) => next.emit('connection', socket));
    } else {
      await this.bind(next, listen);
      const listener = this.listener;
      this.listener = next;
      listener.close(); // no new connections there; the open ones go on
      if (listener !== old) this.retired.add(listener);
    }
    this.server = next;
    this.pair = pair;
    this.host.proto = listen.tls ? 'https' : 'http';
    this.retire(old);
    const port = same ? this.listen.port : (next.address() as AddressInfo).port;
    this.listenSpec = { ...listen, port };
    return { host: listen.host, port };
  }

  /** A server replaced: its idle connections close now, the rest as their requests end (HTTP); TCP connections run on. */
  private retire(server: HttpServer | TcpServer): void {
    // One still bound (a relisten at the same address) is closed with the listener.
    if (server !== this.listener) this.retired.add(server);
    if ('closeIdleConnections' in server) {
      server.closeIdleConnections();
      // An answer on a kept-alive connection ends it: the next request comes on a new one.
      server.keepAliveTimeout = 1;
    }
  }

  private bind(server: HttpServer | TcpServer, listen: ListenSpec): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        const inUse = error.code === 'EADDRINUSE';
        reject(new RouterError(`failed to listen on ${listen.host}:${listen.port} for service '${this.service}': ${inUse ? 'the port is in use' : error.message}`, { cause: error, inUse }));
      });
      server.listen({ port: listen.port, host: listen.host, backlog: 1024 }, () => resolve());
    });
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
    const servers = new Set([this.listener, this.server, ...this.retired].filter((s): s is HttpServer | TcpServer => s !== undefined));
    this.listener = undefined;
    this.server = undefined;
    this.retired.clear();
    await Promise.all(
      [...servers].map(
        (server) =>
          new Promise<void>((resolve) => {
            // A server that never listened (one handed connections) closes at once.
            if (!server.listening) {
              if ('closeAllConnections' in server) server.closeAllConnections();
              return resolve();
            }
            server.close(() => resolve());
            if ('closeAllConnections' in server) server.closeAllConnections();
          }),
      ),
    );
    for (const set of this.open.values()) for (const socket of set) socket.destroy();
    this.open.clear();
    await Promise.all([...this.pools.values()].map((pool) => pool.destroy().catch(() => undefined)));
    this.pools.clear();
  }

  private makeServer(tls: { cert: string; key: string } | undefined, listen: ListenSpec = this.listen): HttpServer | TcpServer {
    const { protocol } = listen;
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

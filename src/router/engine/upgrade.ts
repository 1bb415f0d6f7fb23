import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { observeLatency } from '../router-control.js';
import type { Upstream } from './balancer.js';
import { forwardHeaders, unserved } from './http-proxy.js';
import { dialNext, joinTunnel, onConnectFailure } from './tunnel.js';

/** What upgrade pass-through needs of its engine. */
export interface UpgradeHost {
  readonly service: string;
  proto: 'http' | 'https';
  pick(exclude: ReadonlySet<string>): Upstream | undefined;
  /** Open tunnels by target, cut when the target is forgotten. */
  tunnels(upstream: Upstream): Set<Duplex>;
  counters: { requests: number; failed: number; retried: number };
}

/** Upgrade and Connection are what this request is about: they go on (other hop-by-hop headers do not). */
const KEEP = new Set(['upgrade', 'connection']);

/**
 * Passes a `Connection: Upgrade` request (a WebSocket, h2c …) through to a routed target and
 * then joins the two connections byte for byte, whatever the target answers. The tunnel counts
 * as in flight on its target until either side closes it, so a drain waits for it (up to the
 * drain timeout, after which the target is forgotten and the tunnel cut).
 */
export function proxyUpgrade(host: UpgradeHost, req: IncomingMessage, client: Duplex, head: Buffer): void {
  host.counters.requests++;
  const headers = forwardHeaders(req, host.proto, KEEP);
  let lines = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1\r\n`;
  for (const name in headers) {
    const value = headers[name]!;
    for (const v of Array.isArray(value) ? value : [value]) lines += `${name}: ${v}\r\n`;
  }
  lines += '\r\n';
  const tried = new Set<string>();
  client.on('error', () => undefined);

  const attempt = () => {
    const dialed = dialNext((exclude) => host.pick(exclude), tried);
    if (!dialed) {
      host.counters.failed++;
      const body = `${JSON.stringify({ error: unserved(host.service, tried) })}\n`;
      client.end(`HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      return;
    }
    const { upstream, target, started } = dialed;
    let connected = false;
    target.once('connect', () => {
      connected = true;
      target.setNoDelay(true);
      target.write(lines);
      if (head.length > 0) target.write(head);
      target.once('data', (first: Buffer) => {
        observeLatency(upstream.latency, performance.now() - started);
        const status = /^HTTP\/1\.[01] (\d)\d\d/.exec(first.subarray(0, 16).toString('latin1'))?.[1];
        const cls = `${status}xx` as keyof Upstream['responses'];
        if (cls in upstream.responses) upstream.responses[cls]++;
      });
      joinTunnel(host.tunnels(upstream), upstream, client, target);
    });
    const failed = onConnectFailure(host.counters, upstream, target, client, attempt);
    target.on('error', (error) => {
      if (!connected) failed(error); // once joined, the tunnel's close ends both sides
    });
  };
  attempt();
}

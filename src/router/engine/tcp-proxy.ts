import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { observeLatency } from '../router-control.js';
import type { Upstream } from './balancer.js';
import { dialNext, joinTunnel, onConnectFailure } from './tunnel.js';

/** What the TCP proxy needs of its engine. */
export interface TcpHost {
  pick(exclude: ReadonlySet<string>): Upstream | undefined;
  tunnels(upstream: Upstream): Set<Duplex>;
  counters: { requests: number; failed: number; retried: number };
}


/**
 * Forwards one client connection to a routed target, balancing by connection. A connection the
 * target refused goes to another (nothing was sent yet); once joined, bytes flow both ways
 * untouched until either side closes. An open connection counts as in flight, so a drain waits
 * for it (up to the drain timeout, then the target is forgotten and the connection cut).
 */
export function proxyConnection(host: TcpHost, client: Socket): void {
  host.counters.requests++;
  const tried = new Set<string>();
  client.on('error', () => undefined);
  client.pause();
  const attempt = () => {
    const dialed = dialNext((exclude) => host.pick(exclude), tried);
    if (!dialed) {
      host.counters.failed++;
      client.destroy();
      return;
    }
    const { upstream, target, started } = dialed;
    let connected = false;
    target.once('connect', () => {
      connected = true;
      if (client.destroyed) {
        target.destroy();
        return;
      }
      target.setNoDelay(true);
      client.setNoDelay(true);
      joinTunnel(host.tunnels(upstream), upstream, client, target, () => observeLatency(upstream.latency, performance.now() - started));
      client.resume();
    });
    const failed = onConnectFailure(host.counters, upstream, target, client, attempt);
    target.on('error', (error) => {
      if (!connected) failed(error);
    });
  };
  attempt();
}

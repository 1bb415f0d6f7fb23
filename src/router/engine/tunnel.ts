import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Upstream } from './balancer.js';
import { DOWN_MS, isRefused, MAX_ATTEMPTS } from './http-proxy.js';

/**
 * Connects to the next target to try, one not in `tried` (which it joins); undefined when
 * none is left or MAX_ATTEMPTS were tried. `started` is when the attempt began (for latency).
 */
export function dialNext(pick: (exclude: ReadonlySet<string>) => Upstream | undefined, tried: Set<string>): { upstream: Upstream; target: Socket; started: number } | undefined {
  const upstream = tried.size < MAX_ATTEMPTS ? pick(tried) : undefined;
  if (!upstream) return undefined;
  tried.add(upstream.target.id);
  return { upstream, target: connect({ host: upstream.target.host, port: upstream.target.port }), started: performance.now() };
}

/**
 * Joins a client connection and a connected target byte for byte. The pair counts as in flight
 * on the target (so a drain waits for it) until either side closes; then both are ended, the
 * bytes counted, and `onClose` runs.
 */
export function joinTunnel(tunnels: Set<Duplex>, upstream: Upstream, client: Duplex, target: Socket, onClose?: () => void): void {
  upstream.inflight++;
  upstream.requests++;
  tunnels.add(client);
  target.pipe(client);
  client.pipe(target);
  let open = true;
  const close = () => {
    if (!open) return;
    open = false;
    upstream.inflight--;
    upstream.bytesIn += target.bytesWritten;
    upstream.bytesOut += target.bytesRead;
    onClose?.();
    tunnels.delete(client);
    target.destroy();
    client.destroy();
  };
  target.on('close', close);
  client.on('close', close);
}

/**
 * A target connection that failed before it was joined: a refused one is marked down for a
 * moment and `retry` tries another (nothing was sent); any other error ends the client.
 */
export function onConnectFailure(counters: { failed: number; retried: number }, upstream: Upstream, target: Socket, client: Duplex, retry: () => void): (error: Error) => void {
  return (error) => {
    target.destroy();
    if (isRefused(error)) {
      upstream.downUntil = Date.now() + DOWN_MS;
      counters.retried++;
      retry();
      return;
    }
    counters.failed++;
    client.destroy();
  };
}

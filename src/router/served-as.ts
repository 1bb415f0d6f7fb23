import { RouterError } from '../errors.js';
import type { ListenSpec } from './engine/engine.js';

/** What a running router process says it serves (its health answer, or the record it was started with). */
export interface ServedAs {
  service: string;
  listen: { host: string; port: number; protocol: 'http' | 'tcp'; tls: boolean };
}

/**
 * Checks that a running router, `which` (`pid 41`, `haproxy pid 41`), serves `service` as
 * `wanted` asks (port 0: any port), so that it may be adopted; a RouterError naming both
 * addresses when it does not.
 */
export function checkServedAs(running: ServedAs, service: string, wanted: ListenSpec, which: string): void {
  const { listen } = running;
  const same = running.service === service && listen.protocol === wanted.protocol && listen.tls === (wanted.tls !== undefined) && (wanted.port === 0 || (listen.port === wanted.port && listen.host === wanted.host));
  if (!same) {
    throw new RouterError(`a router for service '${service}' already runs (${which}) on ${listen.host}:${listen.port} (${listen.protocol}${listen.tls ? ', tls' : ''}), not as asked (${wanted.host}:${wanted.port} ${wanted.protocol}${wanted.tls ? ', tls' : ''})`);
  }
}

import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import { BuiltinRouter } from './builtin/builtin-router.js';
import type { ListenSpec } from './engine/engine.js';
import { haproxyVersion, HaproxyRouter } from './haproxy/haproxy-router.js';
import { InProcessRouter } from './in-process.js';
import type { RouterControl } from './router-control.js';

/** The data planes a control plane can run a service's router on. */
export const DATA_PLANES = ['haproxy', 'builtin', 'in-process'] as const;
export type DataPlaneKind = (typeof DATA_PLANES)[number];
/** What an operator picks: one of them, or `auto` (HAProxy when installed, else the built-in router). */
export type DataPlaneChoice = DataPlaneKind | 'auto';

/** Reads `--data-plane`: one of the data planes or `auto`, else a ConfigError naming them. */
export function parseDataPlane(value: string): DataPlaneChoice {
  if (value === 'auto' || (DATA_PLANES as readonly string[]).includes(value)) return value as DataPlaneChoice;
  throw new ConfigError(`--data-plane: expected one of auto, ${DATA_PLANES.join(', ')}; got "${value}"`);
}

/** The data plane a choice means on this machine; `haproxy` where none is installed is a ConfigError. */
export function resolveDataPlane(choice: DataPlaneChoice): DataPlaneKind {
  if (choice === 'auto') return haproxyVersion() ? 'haproxy' : 'builtin';
  if (choice === 'haproxy' && !haproxyVersion()) throw new ConfigError('--data-plane haproxy: HAProxy is not installed here (apt-get install haproxy), or use --data-plane builtin');
  return choice;
}

/** Where a service's router keeps its files (config, control socket, pid, logs); a `/` in its name is escaped. */
export function routerFolder(home: string, service: string): string {
  return join(home, 'routers', encodeURIComponent(service));
}

/**
 * Makes a service's router of `kind`, its files under `folder`. A router process already
 * running there is adopted whatever its kind, so that a change of data plane never drops a
 * service's traffic: the service moves once that router is stopped (`imago server
 * --stop-routers`, then a start).
 */
export function makeRouter(kind: DataPlaneKind, service: string, listen: ListenSpec, folder: string): RouterControl {
  const haproxy = new HaproxyRouter(service, listen, folder);
  const builtin = new BuiltinRouter(service, listen, folder);
  if (haproxy.runningPid() !== undefined) return haproxy;
  if (builtin.runningPid() !== undefined) return builtin;
  if (kind === 'in-process') return new InProcessRouter(service, listen);
  return kind === 'haproxy' ? haproxy : builtin;
}

/**
 * Stops every router process under a state folder (`imago server` leaves them serving when
 * it stops): each found by its pid file, checked to be a router, asked to stop, then killed.
 * Resolves with the services whose router was stopped.
 */
export async function stopRoutersIn(home: string): Promise<string[]> {
  const stopped: string[] = [];
  const root = join(home, 'routers');
  const listen: ListenSpec = { host: '127.0.0.1', port: 0, protocol: 'http' };
  for (const entry of await readdir(root).catch(() => [] as string[])) {
    const folder = join(root, entry);
    const service = decodeURIComponent(entry);
    const any = [await new HaproxyRouter(service, listen, folder).stopRunning(), await new BuiltinRouter(service, listen, folder).stopRunning()];
    if (any.some(Boolean)) stopped.push(service);
  }
  return stopped;
}

import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server } from 'node:net';
import { after } from 'node:test';
import type { HealthWatcher } from '../../src/health/health-gate.js';
import type { ProbeResult } from '../../src/health/probe.js';

/** A tiny app on 127.0.0.1: its port, and how many requests (or connections) reached it. */
export interface App {
  port: number;
  hits: () => number;
}

/** An HTTP app on 127.0.0.1 whose `answer` gets each request with its 1-based number. Closed after the file. */
export async function httpApp(answer: (n: number, req: IncomingMessage, res: ServerResponse) => void): Promise<App> {
  let hits = 0;
  const server = createHttpServer((req, res) => answer(++hits, req, res));
  return { port: await listen(server), hits: () => hits };
}

/** An HTTP app answering `status` to everything. */
export function statusApp(status: number): Promise<App> {
  return httpApp((_n, _req, res) => res.writeHead(status).end());
}

/**
 * A TCP listener on 127.0.0.1 that accepts connections and keeps them open until the client
 * closes them, as a server does; with `hangUp`, it closes each at once instead, as a port
 * proxy does when nothing listens behind it.
 */
export async function tcpListener(options: { hangUp?: boolean } = {}): Promise<App> {
  let hits = 0;
  const server = createTcpServer((socket) => {
    hits++;
    if (options.hangUp) socket.end();
    else socket.on('error', () => undefined).resume();
  });
  return { port: await listen(server), hits: () => hits };
}

/** Resolves with the next `count` results the watcher records (event-driven, no polling). */
export function nextProbes(watcher: HealthWatcher, count: number): Promise<ProbeResult[]> {
  return new Promise((resolve) => {
    const seen: ProbeResult[] = [];
    const off = watcher.onProbe((result) => {
      seen.push(result);
      if (seen.length === count) {
        off();
        resolve(seen);
      }
    });
  });
}

/** Listens on 127.0.0.1:0 and closes the server (and any open connection) after the test file. */
async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  after(
    () =>
      new Promise<void>((resolve) => {
        (server as Server & { closeAllConnections?: () => void }).closeAllConnections?.();
        server.close(() => resolve());
      }),
  );
  return (server.address() as AddressInfo).port;
}

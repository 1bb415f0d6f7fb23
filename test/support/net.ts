import { freeLoopbackPort } from '../../src/controller/ports.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
// undici's fetch, not Node 20's own: that one never settles when a port proxy (docker-proxy)
// accepts and hangs up before the app listens.
import { fetch } from 'undici';

/** A TCP port on 127.0.0.1 that was free a moment ago (the controller's own allocator). */
export function freePort(): Promise<number> {
  return freeLoopbackPort();
}

/** GETs a loopback URL until it answers (or `timeoutMs` passes), and returns the JSON body. */
export async function getJson<T = Record<string, unknown>>(url: string, timeoutMs = 10_000): Promise<{ status: number; body: T }> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      return { status: res.status, body: (await res.json()) as T };
    } catch (error) {
      last = error;
      await sleep(25);
    }
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms: ${String(last)}`);
}

/** Waits until `check` is true (polling), or fails after `timeoutMs` naming `what`. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(25);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** True when something takes a TCP connection on 127.0.0.1:`port`. */
export function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port }, () => (socket.destroy(), resolve(true)));
    socket.on('error', () => resolve(false));
  });
}

/** The SHA-256 fingerprint of the certificate a new TLS connection to 127.0.0.1:`port` is given. */
export function peerFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      socket.destroy();
      resolve(fingerprint);
    });
    socket.on('error', reject);
  });
}

/** One GET of / on 127.0.0.1:`port`, on a connection of its own (no keep-alive), trusting `ca` for https: its status and body. */
export function getOnce(scheme: 'http' | 'https', port: number, ca: string[]): Promise<{ status: number; body: string }> {
  return requestOnce(scheme, port, ca);
}

/** One request to 127.0.0.1:`port` (GET of / unless told), on a connection of its own, trusting `ca` for https: its status and body. */
export function requestOnce(scheme: 'http' | 'https', port: number, ca: string[], init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = scheme === 'https' ? httpsRequest : httpRequest;
    const headers = init.body === undefined ? init.headers : { ...init.headers, 'content-length': String(Buffer.byteLength(init.body)) };
    const req = request({ host: '127.0.0.1', port, path: '/', method: init.method ?? 'GET', headers, agent: false, ca, timeout: 5_000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', reject);
    req.end(init.body);
  });
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher, Pool } from 'undici';
import { observeLatency } from '../router-control.js';
import type { Upstream } from './balancer.js';

/** Headers that are the connection's, not the request's (and `expect`: the router answers 100-continue itself). */
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect']);
/** Methods RFC 9110 calls idempotent: sending one twice does what sending it once does. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
/** How many targets one request (or connection) is tried on, at most. */
export const MAX_ATTEMPTS = 3;
/** Request bodies up to this size are read whole before they are sent, so they can be sent again. */
const REPLAYABLE_BODY = 1024 * 1024;
/** How long a target whose connection failed gets no new requests (the control loop decides for good). */
export const DOWN_MS = 1_000;

/** What the HTTP proxy needs of its engine. */
export interface HttpProxyHost {
  readonly service: string;
  /** `https` when the router terminates TLS. */
  /** Changes when a relisten turns TLS on or off. */
  proto: 'http' | 'https';
  pick(exclude: ReadonlySet<string>): Upstream | undefined;
  poolOf(upstream: Upstream): Pool;
  counters: { requests: number; failed: number; retried: number };
}

type Attempt = { ok: true } | { ok: false; error: Error; responded: boolean; clientGone: boolean };

/**
 * Proxies one request: to a routed target, over its pool of kept-alive connections, with the
 * Host header kept and X-Forwarded-* added. A request that failed before any answer goes to
 * another target when that cannot do it twice: the connection was never made (refused), or
 * it was cut and the request is idempotent or carries an `Idempotency-Key`. Bodies up to
 * 1 MiB are read first so they can be sent again; larger ones are streamed, never resent.
 */
export async function proxyRequest(host: HttpProxyHost, req: IncomingMessage, res: ServerResponse): Promise<void> {
  host.counters.requests++;
  const method = req.method ?? 'GET';
  const headers = forwardHeaders(req, host.proto);
  // Whatever the method, a request that has a body (a length, or chunks) sends it on.
  let body: Buffer | IncomingMessage | null = null;
  let replayable = true;
  let bodyBytes = 0;
  const lengthHeader = req.headers['content-length'];
  const length = lengthHeader === undefined ? undefined : Number(lengthHeader);
  const chunked = req.headers['transfer-encoding'] !== undefined;
  if ((length !== undefined && length > 0) || chunked) {
    if (!chunked && length !== undefined && Number.isFinite(length) && length <= REPLAYABLE_BODY) {
      try {
        body = await readBody(req);
        bodyBytes = body.length;
      } catch {
        return; // the client went away before sending its body
      }
    } else {
      body = req;
      replayable = false;
      bodyBytes = Number.isFinite(length) ? (length ?? 0) : 0;
    }
  }
  const resendable = IDEMPOTENT.has(method) || req.headers['idempotency-key'] !== undefined;
  const tried = new Set<string>();
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const upstream = host.pick(tried);
    if (!upstream) break;
    tried.add(upstream.target.id);
    upstream.inflight++;
    upstream.requests++;
    upstream.bytesIn += bodyBytes;
    let result: Attempt;
    try {
      result = await send(host.poolOf(upstream), upstream, req, res, method, headers, body);
    } finally {
      upstream.inflight--;
    }
    if (result.ok) return;
    if (result.clientGone) return; // the client went away: nothing failed here
    if (result.responded || res.headersSent) {
      host.counters.failed++;
      res.destroy(result.error);
      return;
    }
    const refused = isRefused(result.error);
    const cut = isCut(result.error);
    if (refused || cut) upstream.downUntil = Date.now() + DOWN_MS;
    // Sent again only when the target cannot have done it, or doing it twice is harmless.
    if (!replayable || !(refused || (cut && resendable))) {
      fail(host, res, 502, `instance ${upstream.target.id} of service '${host.service}' failed: ${result.error.message}`);
      return;
    }
    host.counters.retried++;
  }
  fail(host, res, 503, unserved(host.service, tried));
}

/** Why a request got no target: none was routed, or every one tried refused it. */
export function unserved(service: string, tried: ReadonlySet<string>): string {
  return tried.size === 0 ? `service '${service}' has no healthy instance` : `no instance of service '${service}' accepted the request`;
}

/** One attempt on one target, streaming its answer to the client with back-pressure. */
function send(pool: Pool, upstream: Upstream, req: IncomingMessage, res: ServerResponse, method: string, headers: Record<string, string | string[]>, body: Buffer | IncomingMessage | null): Promise<Attempt> {
  const started = performance.now();
  return new Promise<Attempt>((resolve) => {
    let responded = false;
    let controller: Dispatcher.DispatchController | undefined;
    let settled = false;
    let clientGone = false;
    const done = (result: Attempt) => {
      if (settled) return;
      settled = true;
      res.off('close', onClose);
      resolve(result);
    };
    const onClose = () => {
      if (res.writableFinished) return;
      clientGone = true;
      controller?.abort(new Error('the client went away'));
    };
    res.on('close', onClose);
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
      },
      onResponseStart(_c, statusCode, answerHeaders) {
        if (statusCode < 200) return; // 100 Continue and other interim answers stay between router and target
        responded = true;
        observeLatency(upstream.latency, performance.now() - started);
        const cls = `${Math.floor(statusCode / 100)}xx` as keyof Upstream['responses'];
        if (cls in upstream.responses) upstream.responses[cls]++;
        res.writeHead(statusCode, responseHeaders(answerHeaders, upstream.target.id));
      },
      onResponseData(c, chunk) {
        upstream.bytesOut += chunk.length;
        if (!res.write(chunk)) {
          c.pause();
          res.once('drain', () => c.resume());
        }
      },
      onResponseEnd() {
        res.end();
        done({ ok: true });
      },
      onResponseError(_c, error) {
        done({ ok: false, error, responded, clientGone });
      },
    };
    try {
      pool.dispatch({ path: req.url ?? '/', method: method as Dispatcher.HttpMethod, headers, body }, handler);
    } catch (error) {
      done({ ok: false, error: error as Error, responded, clientGone });
    }
  });
}

function fail(host: HttpProxyHost, res: ServerResponse, status: number, message: string): void {
  host.counters.failed++;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json', 'x-imago-router': host.service });
  res.end(`${JSON.stringify({ error: message })}\n`);
}

/** Reads a request's whole body. */
async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/** The request's headers minus hop-by-hop ones, with X-Forwarded-* added; Host is kept. */
export function forwardHeaders(req: IncomingMessage, proto: 'http' | 'https', keep?: ReadonlySet<string>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in req.headers) {
    const value = req.headers[name];
    if (value === undefined || (HOP_BY_HOP.has(name) && !keep?.has(name))) continue;
    out[name] = value;
  }
  const client = req.socket.remoteAddress ?? '';
  const prior = req.headers['x-forwarded-for'];
  out['x-forwarded-for'] = prior ? `${Array.isArray(prior) ? prior.join(', ') : prior}, ${client}` : client;
  if (req.headers.host) out['x-forwarded-host'] = req.headers.host;
  out['x-forwarded-proto'] = proto;
  return out;
}

/** The target's response headers minus hop-by-hop ones, naming the instance that answered. */
function responseHeaders(headers: Record<string, string | string[] | undefined>, id: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  out['x-imago-instance'] = id;
  return out;
}

function codeOf(error: unknown): string | undefined {
  return (error as { code?: string }).code ?? (error as { cause?: { code?: string } }).cause?.code;
}

/** The connection was never made: the request never reached the target. */
export function isRefused(error: unknown): boolean {
  const code = codeOf(error);
  return code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'UND_ERR_CONNECT_TIMEOUT';
}

/** The connection broke before any answer came (the target died, or its port proxy hung up). */
function isCut(error: unknown): boolean {
  const code = codeOf(error);
  return code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE' || code === 'UND_ERR_CLOSED';
}

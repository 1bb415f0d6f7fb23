import type { ListenSpec } from '../engine/engine.js';

/** The names inside a router's haproxy.cfg. */
export const FRONTEND = 'fe';
export const BACKEND = 'be';

/** The files of an HAProxy router's folder. */
export interface HaproxyFiles {
  config: string;
  /** The runtime API (mode 0600, level admin, `expose-fd listeners` for hitless reloads). */
  socket: string;
  pid: string;
  /** The certificate chain and key in one PEM (mode 0600), when TLS is terminated. */
  tlsPem?: string | undefined;
  /** The answers HAProxy gives itself (no instance, instance failed, timeout). */
  errorFiles: { 502: string; 503: string; 504: string };
}

/** The separator of the access log's fields (never in a server name or a number). */
export const LOG_SEPARATOR = '|';

/**
 * How much of the traffic the access log keeps. Below `everyBelow` requests a second (the
 * frontend's rate over the last second) every request is logged; above it one request in
 * `oneIn`, chosen at random, and every request that ended in an error, was retried or got a
 * 5xx. A line per request cost HAProxy 2–11% of its CPU a request at 20,000 requests a second
 * (BENCHMARKS.md); the latency histograms need only a sample, and the failure count gets
 * every failure either way. TCP services log every connection.
 */
export interface AccessLogSampling {
  /** Requests a second (the frontend's, over the last one) below which every request is written. */
  everyBelow: number;
  /** Above it, the size of the sample: 1 request in this many. */
  oneIn: number;
}

/** The access log's sampling unless told otherwise: every request below 1,000 a second, else 1 in 16. */
export const ACCESS_LOG_SAMPLING: AccessLogSampling = { everyBelow: 1000, oneIn: 16 };

/**
 * The syslog levels an access line is written at, which say how many requests it stands for.
 * `format short` starts each line with the level alone in angle brackets (`<5>`), no
 * facility. HAProxy's logger passes `notice` and more urgent ones in HTTP mode, so an
 * unsampled request at `info` is never written.
 */
export const ACCESS_LEVEL = {
  /** Ended in an error (the client's too), retried, or a 5xx, and not in the sample: its failure counted, its latency not. */
  error: 3,
  /** Logged because traffic was below `everyBelow`: itself alone. */
  lowRate: 4,
  /** In the 1-in-`oneIn` sample: `oneIn` requests in the histograms. */
  sampled: 5,
  /** A TCP connection (all are logged): itself alone. */
  tcp: 6,
} as const;

/** A server written into the config (a reload's: what the worker being replaced routes). */
export interface ConfigServer {
  name: string;
  addr: string;
  port: number;
  weight: number;
}

/** How HAProxy runs: its threads and connections, and (started as root) who its workers become. */
export interface HaproxyLimits {
  threads: number;
  maxconn: number;
  /** The user and group the workers drop to once bound, and the empty folder they are shut in (started as root). */
  drop?: { user: string; group: string; chroot: string } | undefined;
  /** What the access log keeps (default ACCESS_LOG_SAMPLING). */
  accessLog?: AccessLogSampling | undefined;
}

/**
 * The haproxy.cfg of one service's router. Pure. Targets are added and removed through the
 * runtime API (`add server`, `del server`), never by a reload; only a reload (a new listen
 * address or TLS files) writes the targets routed then as `servers`, so its new worker
 * routes where the old one did from its first request. Retries
 * follow the built-in router's rules: a connection refused goes to another instance whatever
 * the method; a request cut before its answer is sent again only when it may be done twice
 * (GET, HEAD, OPTIONS, PUT, DELETE, TRACE, or an Idempotency-Key).
 */
export function renderConfig(service: string, listen: ListenSpec, files: HaproxyFiles, limits: HaproxyLimits, servers: ConfigServer[] = []): string {
  const http = listen.protocol === 'http';
  const sampling = limits.accessLog ?? ACCESS_LOG_SAMPLING;
  const bind = `${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}`;
  const lines = [
    `# imago: the router of service '${service}'. Written by imago; targets come and go through the runtime API.`,
    'global',
    '  master-worker',
    `  nbthread ${limits.threads}`,
    `  stats socket ${files.socket} mode 600 level admin expose-fd listeners`,
    `  pidfile ${files.pid}`,
    `  maxconn ${limits.maxconn}`,
    '  hard-stop-after 30s',
    // Started as root: the workers bind, then become an unprivileged user shut in an empty folder.
    ...(limits.drop ? [`  user ${limits.drop.user}`, `  group ${limits.drop.group}`, `  chroot ${limits.drop.chroot}`] : []),
    // Access lines on the worker's stdout (a file imago reads for latency and failures), each
    // starting with its level (`<5>`); errors to stderr. HTTP passes `notice` and up: an
    // unsampled request that went well (`info`) is never written (see ACCESS_LEVEL).
    `  log stdout format short local0 ${http ? 'notice' : 'info'}`,
    // Buffers stay at HAProxy's default 16 KiB: an L7 retry (`retry-on` below) copies the whole
    // buffer for every request it may send again, so 32 KiB buffers cost about half of what the
    // retries cost (BENCHMARKS.md). Requests take up to 15 KiB of headers (16 KiB less the
    // 1 KiB HAProxy keeps for rewrites); a larger one gets 400. 8 KiB buffers would turn away
    // requests with 7–15 KiB of headers (large cookies, tokens) for no gain in CPU or
    // throughput the config bench could tell from its noise (BENCHMARKS.md, 2026-12-08).
    '',
    'defaults',
    `  mode ${listen.protocol}`,
    '  log global',
    '  timeout connect 2s',
    '  timeout client 60s',
    '  timeout server 60s',
    '  timeout client-fin 5s',
    '  timeout tunnel 1h',
    ...(http ? ['  timeout http-request 30s', '  timeout http-keep-alive 60s'] : []),
    '  retries 3',
    '  option redispatch 1',
    // `always`: any request, a client's first included, may go over any idle connection to the
    // server, as the built-in router's pools do. `aggressive` reuses only connections already
    // reused once, so clients with a connection per request (every request a first one) never
    // reuse any: measured 0.67× of `always` (BENCHMARKS.md). The race it guards against, an
    // instance closing an idle connection as a request is sent on it, is the same in both modes
    // for every later request, and is retried by `retry-on` below when the request may be
    // done twice.
    ...(http ? ['  retry-on conn-failure empty-response', '  option http-keep-alive', '  http-reuse always'] : []),
    ...(http
      ? [`  errorfile 502 ${files.errorFiles[502]}`, `  errorfile 503 ${files.errorFiles[503]}`, `  errorfile 504 ${files.errorFiles[504]}`]
      : []),
    '',
    `frontend ${FRONTEND}`,
    `  bind ${bind}${listen.tls && files.tlsPem ? ` ssl crt ${files.tlsPem}` : ''}`,
    ...(http
      ? [
          // server | response time (ms) | status | termination state | what a sampled line stands for
          `  log-format "%s${LOG_SEPARATOR}%Tr${LOG_SEPARATOR}%ST${LOG_SEPARATOR}%tsc${LOG_SEPARATOR}${sampling.oneIn}"`,
          // A request that ended in an error, was retried or got a 5xx is written at `err`
          // unless it is in the sample; the others at `warning` while traffic is low, at
          // `notice` when sampled, and never otherwise.
          '  option log-separate-errors',
          `  acl busy fe_req_rate ge ${sampling.everyBelow}`,
          '  http-request set-log-level warning unless busy',
          `  http-request set-log-level notice if { rand(${sampling.oneIn}) eq 0 } busy`,
          '  option forwardfor',
          `  http-request set-header X-Forwarded-Proto ${listen.tls ? 'https' : 'http'}`,
        ]
      : [`  log-format "%s${LOG_SEPARATOR}%Tt${LOG_SEPARATOR}-${LOG_SEPARATOR}%tsc${LOG_SEPARATOR}1"`]),
    `  default_backend ${BACKEND}`,
    '',
    `backend ${BACKEND}`,
    '  balance roundrobin',
    ...(http ? ['  http-request disable-l7-retry unless { method GET HEAD OPTIONS PUT DELETE TRACE } || { req.hdr(idempotency-key) -m found }'] : []),
    ...servers.map((s) => `  server ${s.name} ${serverArgs(s.addr, s.port, s.weight)}`),
    '',
  ];
  return lines.join('\n');
}

/** An HTTP answer HAProxy sends itself, as an errorfile: JSON naming the service. */
export function renderErrorFile(status: 502 | 503 | 504, service: string): string {
  const [reason, message] = {
    502: ['Bad Gateway', `an instance of service '${service}' failed before answering`],
    503: ['Service Unavailable', `service '${service}' has no healthy instance`],
    504: ['Gateway Timeout', `an instance of service '${service}' did not answer in time`],
  }[status] as [string, string];
  const body = `${JSON.stringify({ error: message })}\n`;
  return `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncache-control: no-store\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}

/**
 * The runtime API's `add server` arguments of a target: checked by connection (so a dead
 * instance is marked down even with no request), and marked down at once on a connection
 * error seen by traffic (`observe layer4`). The idle pool as a static server has it
 * (`pool-max-conn -1 pool-purge-delay 5s`): a dynamic server of 2.6 keeps no idle connection
 * without both, and every request then opens a new one (measured: 0 of 100,000 reused, and
 * about a third of the throughput).
 */
export function serverArgs(host: string, port: number, weight: number): string {
  const address = host.includes(':') ? `[${host}]` : host;
  return `${address}:${port} weight ${weight} pool-max-conn -1 pool-purge-delay 5s check inter 1s fall 2 rise 1 observe layer4 error-limit 1 on-error mark-down`;
}

/**
 * The connections HAProxy may hold at once under an open-files limit: each takes two (client
 * and server side), with room for listeners and checks. At most 50,000.
 */
export function maxconnFor(openFiles: number): number {
  return Math.max(256, Math.min(50_000, Math.floor((openFiles - 200) / 2)));
}

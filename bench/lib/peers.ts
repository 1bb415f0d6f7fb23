/** What the data-plane benches set beside imago's routers: waiting for a server, and the standalone HAProxy peer. */
import { cpus } from 'node:os';

/** Waits until `url` answers 200, or fails naming it after `timeoutMs` (10 s). */
export async function waitForAnswer(url: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fetch(url).then((r) => r.ok, () => false)) return;
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${Math.round(timeoutMs / 1000)} s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The config of the benches' standalone HAProxy: the least a proxy for the same instances
 * needs (roundrobin, `http-reuse always`, no log), on 127.0.0.1:`port`.
 */
export function minimalHaproxyConfig(port: number, backends: number[], maxconn: number): string {
  return [
    'global',
    `  nbthread ${Math.min(4, cpus().length)}`,
    `  maxconn ${maxconn}`,
    'defaults',
    '  mode http',
    '  timeout connect 2s',
    '  timeout client 60s',
    '  timeout server 60s',
    '  option http-keep-alive',
    'frontend fe',
    `  bind 127.0.0.1:${port}`,
    '  default_backend be',
    'backend be',
    '  balance roundrobin',
    '  http-reuse always',
    ...backends.map((backend, i) => `  server i${i} 127.0.0.1:${backend}`),
    '',
  ].join('\n');
}

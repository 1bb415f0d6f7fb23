import { request } from 'undici';

/** What a load client saw. */
export interface LoadResult {
  ok: number;
  failed: number;
  /** The first failures, for the assertion message. */
  failures: string[];
  /** Answers by method. */
  byMethod: Record<string, { ok: number; failed: number }>;
}

/**
 * Clients that send requests through `url` without pause until stopped, alternating GET and
 * POST (with a small JSON body; `idempotencyKey` adds an `Idempotency-Key` header to each
 * POST, as a client that may safely retry does). `keepAlive: false` closes the connection after
 * every request (a new one each time). A failure is any non-2xx answer or a connection error.
 */
export function startLoad(url: string, options: { clients?: number; idempotencyKey?: boolean; keepAlive?: boolean } = {}): { stop: () => Promise<LoadResult>; sent: () => number } {
  let stopping = false;
  const result: LoadResult = { ok: 0, failed: 0, failures: [], byMethod: { GET: { ok: 0, failed: 0 }, POST: { ok: 0, failed: 0 } } };
  let n = 0;
  const client = async (index: number) => {
    for (let i = 0; !stopping; i++) {
      const method = (i + index) % 2 === 0 ? 'GET' : 'POST';
      const key = `k-${index}-${i}-${n++}`;
      try {
        const res = await request(url, {
          method,
          reset: options.keepAlive === false,
          ...(method === 'POST' ? { body: JSON.stringify({ n: i }), headers: { 'content-type': 'application/json', ...(options.idempotencyKey ? { 'idempotency-key': key } : {}) } } : {}),
        });
        const text = await res.body.text();
        if (res.statusCode >= 200 && res.statusCode < 300) {
          result.ok++;
          result.byMethod[method]!.ok++;
        } else {
          result.failed++;
          result.byMethod[method]!.failed++;
          if (result.failures.length < 10) result.failures.push(`${method} ${res.statusCode} ${text.slice(0, 200)}`);
        }
      } catch (error) {
        result.failed++;
        result.byMethod[method]!.failed++;
        if (result.failures.length < 10) result.failures.push(`${method} ${String((error as Error).cause ?? error)}`);
        await new Promise((resolve) => setImmediate(resolve)); // never spin without yielding
      }
    }
  };
  const running = Array.from({ length: options.clients ?? 4 }, (_, i) => client(i));
  return {
    sent: () => result.ok + result.failed,
    stop: async () => {
      stopping = true;
      await Promise.all(running);
      return result;
    },
  };
}

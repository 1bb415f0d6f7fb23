import { createServer } from 'node:net';

/**
 * A loopback port that is free now, not in `taken` (ports handed out and not yet bound).
 * The kernel picks it (listen on port 0), so two callers never race for a guessed number.
 */
export async function freeLoopbackPort(taken: ReadonlySet<number> = new Set()): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.unref();
      server.on('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        const chosen = typeof address === 'object' && address ? address.port : 0;
        server.close(() => resolve(chosen));
      });
    });
    if (!taken.has(port)) return port;
  }
  throw new Error('failed to find a free loopback port in 20 tries');
}

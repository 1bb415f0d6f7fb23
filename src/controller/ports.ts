import { createServer } from 'node:net';
import { choosePort } from '../core/ports.js';

/** Hands out loopback ports for new instances and takes them back. */
export interface PortAllocator {
  /** A port no instance of this control plane holds, that binds now. */
  allocate(): Promise<number>;
  /** Gives a port back (its instance is gone, or never started). */
  release(port: number): void;
  /** Marks a port as held (an adopted instance's). */
  hold(port: number): void;
}

/**
 * Ports from core's range (below the kernel's ephemeral ports), each checked by binding it
 * once on 127.0.0.1; busy ones are skipped. Shared by every service of a control plane.
 */
export class LoopbackPorts implements PortAllocator {
  private readonly held = new Set<number>();

  constructor(private readonly random: () => number = Math.random) {}

  async allocate(): Promise<number> {
    const busy = new Set(this.held);
    for (let attempt = 0; attempt < 50; attempt++) {
      const port = choosePort(busy, this.random());
      if (port === undefined) break;
      if (await binds(port)) {
        this.held.add(port);
        return port;
      }
      busy.add(port);
    }
    throw new Error('failed to find a free loopback port for a new instance in 50 tries');
  }

  release(port: number): void {
    this.held.delete(port);
  }

  hold(port: number): void {
    this.held.add(port);
  }
}

/** Ports for instances that listen on nothing real (the fake provider): from the range, never checked. */
export class VirtualPorts implements PortAllocator {
  private readonly held = new Set<number>();
  async allocate(): Promise<number> {
    const port = choosePort(this.held, Math.random());
    if (port === undefined) throw new Error('no port left');
    this.held.add(port);
    return port;
  }
  release(port: number): void {
    this.held.delete(port);
  }
  hold(port: number): void {
    this.held.add(port);
  }
}

/** True when 127.0.0.1:`port` can be bound now. */
function binds(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A loopback port that is free now (the kernel picks it), not in `taken`. For tests and
 * tools that need any free port; instances get theirs from LoopbackPorts.
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

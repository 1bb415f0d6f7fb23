import { RouterEngine, type ListenSpec } from './engine/engine.js';
import { drainBy, type RouterControl, type RouterSnapshot, type RouterStats, type RouterTarget } from './router-control.js';

/**
 * The built-in engine inside the calling process: what the router process runs, and what tests
 * and an embedded control plane use when a router of its own is not wanted. It stops serving
 * when its process ends.
 */
export class InProcessRouter implements RouterControl {
  readonly kind = 'built-in (in-process)';
  readonly pid = undefined;
  readonly engine: RouterEngine;

  constructor(
    readonly service: string,
    listen: ListenSpec,
  ) {
    this.engine = new RouterEngine(service, listen);
  }

  /** Starts listening. */
  start(): Promise<{ host: string; port: number }> {
    return this.engine.start();
  }

  async route(target: RouterTarget): Promise<void> {
    this.engine.route(target);
  }

  async unroute(id: string): Promise<void> {
    this.engine.unroute(id);
  }

  drain(id: string, timeoutMs: number): Promise<number> {
    return drainBy(this, id, timeoutMs, 10);
  }

  async forget(id: string): Promise<void> {
    this.engine.forget(id);
  }

  /** Serves `listen` from now on (see RouterEngine.relisten). */
  relisten(listen: ListenSpec): Promise<{ host: string; port: number }> {
    return this.engine.relisten(listen);
  }

  async setWeights(weights: Record<string, number> | undefined): Promise<void> {
    this.engine.setWeights(weights);
  }

  async snapshot(): Promise<RouterSnapshot> {
    return this.engine.snapshot();
  }

  async stats(): Promise<RouterStats> {
    return this.engine.stats();
  }

  /** Stops serving (in-process, letting go is stopping). */
  close(): Promise<void> {
    return this.engine.close();
  }

  stop(): Promise<void> {
    return this.engine.close();
  }
}

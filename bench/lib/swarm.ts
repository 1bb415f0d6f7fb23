/**
 * A one-node Docker Swarm for the bench: joined (or reused) at the start, left at the end
 * when the bench made it; services created and updated with the docker CLI, watched through
 * the engine's API (one inspect and one task list per poll: cheaper than a CLI per poll).
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import Docker from 'dockerode';
import { runChild, tail } from './child.js';
import { DOCKER } from './docker-runner.js';

/** Task states in which a task's container is, or is about to be, running. */
const ALIVE = new Set(['new', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting', 'running']);
/** Update states after which the update will not complete on its own. */
const STUCK = new Set(['paused', 'rollback_started', 'rollback_paused', 'rollback_completed']);
/** The label the engine puts on a service task's container. */
const SERVICE_LABEL = 'com.docker.swarm.service.name';

/** The health check and update settings of the bench's swarm service. */
export interface SwarmServiceOptions {
  name: string;
  /** An image id (`sha256:<config digest>`): the engine then never tries to pull it. */
  image: string;
  replicas: number;
  env: Record<string, string>;
  healthCmd: string;
  healthIntervalMs: number;
  healthTimeoutMs: number;
  healthRetries: number;
  healthStartPeriodMs: number;
  updateParallelism: number;
  updateMonitorMs: number;
  stopGraceMs: number;
  /** A label on the service and its containers, to find (and remove) exactly them. */
  label: string;
}

/** When a service reached what was asked of it. */
export interface Convergence {
  /** From the call (before the CLI was started) until the poll that saw it converged. */
  ms: number;
  /** How long the CLI command itself took (it returns once the engine accepted the change). */
  cliMs: number;
  /** The update as the engine timed it (UpdateStatus.StartedAt → CompletedAt); updates only. */
  engineMs: number | undefined;
  polls: number;
}

const seconds = (ms: number) => `${ms / 1000}s`;

/** `docker service create` arguments: detached, the image by id, no image lookup in a registry, no published port. */
export function createArgs(o: SwarmServiceOptions): string[] {
  return [
    'service', 'create', '--detach', '--no-resolve-image', '--quiet',
    '--name', o.name,
    '--replicas', String(o.replicas),
    ...Object.entries(o.env).flatMap(([key, value]) => ['--env', `${key}=${value}`]),
    '--health-cmd', o.healthCmd,
    '--health-interval', seconds(o.healthIntervalMs),
    '--health-timeout', seconds(o.healthTimeoutMs),
    '--health-retries', String(o.healthRetries),
    '--health-start-period', seconds(o.healthStartPeriodMs),
    '--update-order', 'start-first',
    '--update-parallelism', String(o.updateParallelism),
    '--update-delay', '0s',
    '--update-monitor', seconds(o.updateMonitorMs),
    '--update-failure-action', 'pause',
    '--stop-grace-period', seconds(o.stopGraceMs),
    '--label', o.label,
    '--container-label', o.label,
    o.image,
  ];
}

/** The bench's use of Swarm on this engine. */
export class SwarmBench {
  readonly api = new Docker();
  /** True when this bench ran `docker swarm init` (and so leaves the swarm at the end). */
  initialised = false;
  private gwbridgeBefore = true;
  private readonly services = new Set<string>();

  /** Joins a one-node swarm (`docker swarm init --advertise-addr 127.0.0.1`), or reuses the one this node manages. */
  async ensure(): Promise<'initialised' | 'reused'> {
    const info = await this.cli(['info', '--format', '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}']);
    const [state, manager] = info.trim().split(' ');
    if (state === 'active') {
      if (manager !== 'true') throw new Error('expected this node to be a swarm manager, got a worker node: run the bench on a manager');
      return 'reused';
    }
    if (state !== 'inactive') throw new Error(`expected the node's swarm state to be inactive or active, got "${state}"`);
    this.gwbridgeBefore = (await runChild(DOCKER, ['network', 'inspect', 'docker_gwbridge'])).code === 0;
    await this.cli(['swarm', 'init', '--advertise-addr', '127.0.0.1']);
    this.initialised = true;
    return 'initialised';
  }

  /** Creates the service and waits until `replicas` tasks of its image run (healthy: swarm reports a task running once its health check passed). */
  async create(options: SwarmServiceOptions, timeoutMs: number): Promise<Convergence> {
    const existing = await runChild(DOCKER, ['service', 'inspect', options.name]);
    if (existing.code === 0) throw new Error(`a swarm service '${options.name}' already exists: remove it (docker service rm ${options.name}) and run the bench again`);
    const t0 = performance.now();
    this.services.add(options.name);
    const cli = await this.cli(createArgs(options)).then(() => performance.now() - t0);
    return this.waitFor(options.name, options.image, options.replicas, { t0, cliMs: cli, update: false, timeoutMs });
  }

  /** `docker service update --image`, timed until the update completed, `replicas` tasks of the image run and none of another. */
  async update(name: string, image: string, replicas: number, timeoutMs: number): Promise<Convergence> {
    const t0 = performance.now();
    await this.cli(['service', 'update', '--detach', '--no-resolve-image', '--quiet', '--image', image, name]);
    const cliMs = performance.now() - t0;
    return this.waitFor(name, image, replicas, { t0, cliMs, update: true, timeoutMs });
  }

  /** The containers of a service's tasks (running or not). */
  async containers(name: string): Promise<Docker.ContainerInfo[]> {
    return this.api.listContainers({ all: true, filters: { label: [`${SERVICE_LABEL}=${name}`] } });
  }

  /** Runs a command in one running container of the service (for checks; not timed). */
  async execInOne(name: string, command: string[]): Promise<string> {
    const running = (await this.containers(name)).find((c) => c.State === 'running');
    if (!running) throw new Error(`expected a running container of service '${name}', got none`);
    return this.cli(['exec', running.Id, ...command]);
  }

  /** Removes a service and waits until its containers are gone. */
  async remove(name: string): Promise<void> {
    const result = await runChild(DOCKER, ['service', 'rm', name]);
    if (result.code !== 0 && !/not found/i.test(result.stderr)) throw new Error(`docker service rm ${name} failed: ${tail(result.stderr)}`);
    const deadline = Date.now() + 60_000;
    while ((await this.containers(name)).length > 0) {
      if (Date.now() > deadline) throw new Error(`service '${name}' removed, but its containers were still there after 60 s`);
      await sleep(200);
    }
    this.services.delete(name);
  }

  /** Removes what is left of the bench's services, and leaves the swarm when the bench made it. */
  async cleanup(): Promise<string[]> {
    const notes: string[] = [];
    for (const name of [...this.services]) {
      await this.remove(name).then(
        () => notes.push(`removed swarm service ${name}`),
        (error: Error) => notes.push(`failed to remove swarm service ${name}: ${error.message}`),
      );
    }
    if (this.initialised) {
      const left = await runChild(DOCKER, ['swarm', 'leave', '--force']);
      notes.push(left.code === 0 ? 'left the swarm (docker swarm leave --force)' : `docker swarm leave --force failed: ${tail(left.stderr)}`);
      if (left.code === 0) this.initialised = false;
      if (!this.gwbridgeBefore) {
        const rm = await runChild(DOCKER, ['network', 'rm', 'docker_gwbridge']);
        notes.push(rm.code === 0 ? 'removed the docker_gwbridge network swarm had made' : `left the docker_gwbridge network: ${tail(rm.stderr, 1)}`);
      }
    }
    return notes;
  }

  /** Polls the service and its tasks every 100 ms until converged; fails on a stuck update or after `timeoutMs`. */
  private async waitFor(name: string, image: string, replicas: number, o: { t0: number; cliMs: number; update: boolean; timeoutMs: number }): Promise<Convergence> {
    let polls = 0;
    let last = '';
    for (;;) {
      polls++;
      const service = (await this.api.getService(name).inspect()) as Docker.Service;
      const tasks = (await this.api.listTasks({ filters: { service: [name] } })) as Array<{ Spec?: { ContainerSpec?: { Image?: string } }; Status?: { State?: string; Err?: string } }>;
      const at = performance.now();
      const updateState = service.UpdateStatus?.State;
      const fresh = tasks.filter((t) => t.Spec?.ContainerSpec?.Image === image && t.Status?.State === 'running').length;
      const old = tasks.filter((t) => t.Spec?.ContainerSpec?.Image !== image && ALIVE.has(t.Status?.State ?? '')).length;
      last = `update ${updateState ?? 'none'}, ${fresh} running with the new image, ${old} others alive`;
      if (o.update && updateState && STUCK.has(updateState)) throw new Error(`expected the update of '${name}' to complete, got ${updateState}: ${service.UpdateStatus?.Message ?? ''}; task errors: ${tasks.map((t) => t.Status?.Err).filter(Boolean).join('; ')}`);
      if (fresh === replicas && old === 0 && (!o.update || updateState === 'completed')) {
        const started = Date.parse(service.UpdateStatus?.StartedAt ?? '');
        const completed = Date.parse(service.UpdateStatus?.CompletedAt ?? '');
        const engineMs = o.update && Number.isFinite(started) && Number.isFinite(completed) ? completed - started : undefined;
        return { ms: at - o.t0, cliMs: o.cliMs, engineMs, polls };
      }
      if (at - o.t0 > o.timeoutMs) throw new Error(`expected service '${name}' to converge within ${o.timeoutMs / 1000} s, got: ${last}`);
      await sleep(100);
    }
  }

  private async cli(args: string[]): Promise<string> {
    const result = await runChild(DOCKER, args);
    if (result.code !== 0) throw new Error(`docker ${args.slice(0, 3).join(' ')} … failed with exit code ${result.code}: ${tail(result.stderr || result.stdout)}`);
    return result.stdout;
  }
}

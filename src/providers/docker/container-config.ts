import type { ContainerCreateOptions, MountSettings } from 'dockerode';
import { mergeEnv } from '../../bake/image-config.js';
import { volumeKey } from '../../config/volume-key.js';
import { Label, type InstanceSpec } from '../provider.js';

/** Labels the docker provider adds to what the caller gives. */
export const DockerLabel = {
  scope: 'imago.scope',
  instance: 'imago.instance',
  port: 'imago.port',
} as const;

/** The network imago containers join by default: a bridge without inter-container traffic. */
export const NETWORK = 'imago';

/** What a new container is made from, besides its spec. */
export interface ContainerContext {
  /** The engine's id of the image (immutable, unlike its name). */
  image: string;
  scope: string;
  /** The bridge network the container joins (made by the provider). */
  network: string;
  /** Docker volume names, by the spec's volume names. */
  volumeNames: Record<string, string>;
  /** Defaults for limits the spec does not set. */
  defaultResources: { memory: number; pids: number };
  /** File secrets: a host file on a tmpfs (mode 0400) bound read-only at each target. */
  secretFiles?: Array<{ source: string; target: string }>;
}

/**
 * The create request of a sealed container, as the CIS Docker Benchmark asks: a read-only
 * root with a tmpfs /tmp, no new privileges, every capability dropped, never privileged,
 * memory (without swap) and pids limits, its own ipc namespace, no restart by the engine
 * (the guard replaces instances), a port published on 127.0.0.1 only, and the named volumes
 * mounted without copying image content into them, and no engine health check. The app listens on `appPort` in its own
 * network namespace (the service's or image's port), reached from 127.0.0.1:`port`. Pure: no
 * engine call.
 */
export function containerCreateOptions(spec: InstanceSpec, ctx: ContainerContext): ContainerCreateOptions {
  const appPort = spec.appPort ?? spec.port;
  const port = `${appPort}/tcp`;
  const resources = spec.resources ?? ctx.defaultResources;
  return {
    name: spec.id,
    Image: ctx.image,
    Hostname: spec.id.slice(0, 63),
    // The image's environment comes first (the engine merges it); the instance's, PORT and HOST
    // override it, each name once (a process reads the first of two, not the last).
    Env: mergeEnv([], [...spec.env, ['PORT', String(appPort)], ['HOST', '0.0.0.0']]).map(([key, value]) => `${key}=${value}`),
    // imago's health gate decides; the engine's own check would be an exec into the container
    // every interval, which is exactly what imago reports as drift.
    Healthcheck: { Test: ['NONE'] },
    Labels: { ...spec.labels, [DockerLabel.scope]: ctx.scope, [DockerLabel.instance]: spec.id, [DockerLabel.port]: String(spec.port), [Label.digest]: spec.digest },
    ExposedPorts: { [port]: {} },
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    OpenStdin: false,
    Tty: false,
    HostConfig: {
      ReadonlyRootfs: true,
      Tmpfs: { '/tmp': 'rw,nosuid,nodev,mode=1777' },
      SecurityOpt: ['no-new-privileges:true'],
      CapDrop: ['ALL'],
      Privileged: false,
      Memory: resources.memory,
      MemorySwap: resources.memory,
      PidsLimit: resources.pids,
      IpcMode: 'private',
      RestartPolicy: { Name: 'no' },
      NetworkMode: ctx.network,
      PortBindings: { [port]: [{ HostIp: '127.0.0.1', HostPort: String(spec.port) }] },
      Mounts: spec.volumes.map((volume) => ({
        Type: 'volume' as const,
        Source: ctx.volumeNames[volume.name]!,
        Target: volume.path,
        ReadOnly: false,
        // Mounted as it is: image content at the path is not copied in (as on the process provider).
        VolumeOptions: { NoCopy: true } as NonNullable<MountSettings['VolumeOptions']>,
      })).concat((ctx.secretFiles ?? []).map((file) => ({ Type: 'bind' as const, Source: file.source, Target: file.target, ReadOnly: true }) as never)),
      // The engine keeps a bounded copy; imago's own copy of the log is the per-instance file.
      LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '2' } },
    },
  };
}

/**
 * The Docker volume that holds `name` for `service` (a service key) in this scope (see
 * volumeKey). Two pairs that make one name are refused in one config, and across configs
 * VolumeManager refuses the second by the volume's service label.
 */
export function volumeName(scope: string, service: string, name: string): string {
  return `imago-${scope}-${volumeKey(service, name)}`;
}

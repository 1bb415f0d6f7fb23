import { createHash } from 'node:crypto';
import type Docker from 'dockerode';
import tar from 'tar-stream';
import { ociArchitecture } from '../../bake/image-config.js';
import { ProviderError } from '../../errors.js';
import { Label } from '../provider.js';
import { DockerLabel } from './container-config.js';
import { engineError, statusOf } from './engine-error.js';
import { loadArchive } from './image-loader.js';

/**
 * Named volumes: Docker volumes that outlive every container, labelled with the scope and
 * the service. A new volume is made writable by the instance's user: its root directory is
 * given that uid:gid through the engine's own copy-up (a throwaway container, created but
 * never started, from a one-directory image owned by that user), so no shell, no host path
 * and no running helper is needed, and it works on a remote engine too.
 */
export class VolumeManager {
  private readonly inflight = new Map<string, Promise<string | undefined>>();

  constructor(
    private readonly docker: Docker,
    private readonly scope: string,
  ) {}

  /**
   * Creates the Docker volume `name` for `service`'s volume `declared` (its name in the
   * config) when missing, owned by `owner`; one creation at a time per name. A volume of that
   * name that holds another service's data is refused, never shared: names join service and
   * volume with "-", which both may hold (`web` + `data-x` and `web-data` + `x` make one name).
   */
  async ensure(name: string, service: string, owner: { uid: number; gid: number }, declared = name): Promise<void> {
    let pending = this.inflight.get(name);
    if (!pending) {
      pending = this.create(name, service, owner).finally(() => this.inflight.delete(name));
      this.inflight.set(name, pending);
    }
    const holder = await pending;
    if (holder !== undefined && holder !== service) {
      throw new ProviderError(
        `volume '${declared}' of service '${service}' would be Docker volume '${name}', which holds the data of service '${holder}' (imago joins service and volume names with "-"); rename the volume or the service. If the two have shared it before, both services' data is in '${name}': copy what '${service}' needs into its new volume`,
      );
    }
  }

  /** Inspects or makes the volume; resolves with the service it belongs to (undefined when its label says none). */
  private async create(name: string, service: string, owner: { uid: number; gid: number }): Promise<string | undefined> {
    const existing = await this.labelsOf(name);
    if (existing) return existing[Label.service];
    try {
      await this.docker.createVolume({ Name: name, Labels: { [DockerLabel.scope]: this.scope, [Label.service]: service } });
    } catch (error) {
      throw engineError(`failed to create volume '${name}'`, error);
    }
    // The engine answers a create of a name that exists (made meanwhile by another process) with that volume, labels unchanged.
    const made = await this.labelsOf(name);
    if (!made) throw new ProviderError(`volume '${name}' was gone right after it was created (removed by someone else?); try again`);
    if (made[Label.service] !== service) return made[Label.service];
    try {
      if (owner.uid !== 0 || owner.gid !== 0) await this.chown(name, owner);
    } catch (error) {
      // A volume left owned by root would stay unwritable for the app: remove it, try again next time.
      await this.docker.getVolume(name).remove().catch(() => undefined);
      throw engineError(`failed to give volume '${name}' to ${owner.uid}:${owner.gid}`, error);
    }
    return service;
  }

  /** The labels of volume `name` (undefined when there is none), refusing one that is not this home's. */
  private async labelsOf(name: string): Promise<Record<string, string> | undefined> {
    let labels: Record<string, string> | undefined;
    try {
      labels = (await this.docker.getVolume(name).inspect()).Labels ?? {};
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw engineError(`failed to inspect volume '${name}'`, error);
    }
    if (labels[DockerLabel.scope] !== this.scope) {
      throw new ProviderError(`volume '${name}': it exists but does not belong to this imago home (scope ${this.scope}); remove or rename it`);
    }
    return labels;
  }

  /** Gives the new volume's root to `owner` through copy-up at container create. */
  private async chown(name: string, owner: { uid: number; gid: number }): Promise<void> {
    const image = await this.ownerImage(owner);
    const container = await this.docker.createContainer({
      Image: image,
      Labels: { [DockerLabel.scope]: this.scope },
      NetworkDisabled: true,
      HostConfig: { Mounts: [{ Type: 'volume', Source: name, Target: '/volume' }], NetworkMode: 'none' },
    });
    await container.remove({ force: true });
  }

  /** A one-layer image holding only `/volume`, owned by `owner`, loaded once per owner. */
  private async ownerImage(owner: { uid: number; gid: number }): Promise<string> {
    const ref = `imago.local/volume-owner:${owner.uid}-${owner.gid}`;
    try {
      await this.docker.getImage(ref).inspect();
      return ref;
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
    }
    const layer = await tarBuffer([{ name: 'volume/', type: 'directory', mode: 0o755, uid: owner.uid, gid: owner.gid }]);
    const config = Buffer.from(
      JSON.stringify({
        architecture: ociArchitecture(),
        os: 'linux',
        config: { Cmd: ['/volume'], Labels: { 'dev.imago.role': 'volume-owner' } },
        rootfs: { type: 'layers', diff_ids: [`sha256:${sha256(layer)}`] },
      }),
    );
    const manifest = Buffer.from(JSON.stringify([{ Config: 'config.json', RepoTags: [ref], Layers: ['layer.tar'] }]));
    const archive = await tarBuffer([
      { name: 'config.json', data: config },
      { name: 'layer.tar', data: layer },
      { name: 'manifest.json', data: manifest },
    ]);
    await loadArchive(this.docker, archive);
    return ref;
  }
}

type Entry = { name: string; type?: 'directory' | 'file'; mode?: number; uid?: number; gid?: number; data?: Buffer };

/** A small tar in memory (fixed times and owners: the same bytes every time). */
function tarBuffer(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
  const done = new Promise<Buffer>((resolve, reject) => {
    pack.on('end', () => resolve(Buffer.concat(chunks)));
    pack.on('error', reject);
  });
  for (const entry of entries) {
    pack.entry({ name: entry.name, type: entry.type ?? 'file', mode: entry.mode ?? 0o644, uid: entry.uid ?? 0, gid: entry.gid ?? 0, mtime: new Date(0) }, entry.data ?? Buffer.alloc(0));
  }
  pack.finalize();
  return done;
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

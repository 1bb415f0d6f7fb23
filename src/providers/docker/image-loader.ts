import { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { ProviderError } from '../../errors.js';
import { layoutFiles } from '../../image/layout-files.js';
import { ManifestSchema, parseJsonAs } from '../../image/schemas.js';
import { layoutTarStream } from '../../image/write-layout.js';
import { digestHex, type Digest } from '../../oci/digest.js';
import type { ImageStore } from '../../store/image-store.js';
import { engineError } from './engine-error.js';

/**
 * The engine's name for an imago image: `imago.local/sha256:<hex of the manifest digest>`.
 * Content-addressed like the store, so a digest is loaded once and found again by name.
 */
export function imageRef(digest: Digest): string {
  return `imago.local/sha256:${digestHex(digest)}`;
}

/** Loads in progress and done (the engine's image id), by engine and digest, for every loader of this process. */
const inflight = new Map<string, Promise<string>>();
const loaded = new Map<string, string>();

/**
 * Loads images from imago's store into the engine (`POST /images/load`, streamed from the
 * blobs; no registry, no file in between), each digest once. The engine's image must then
 * be the store's: its id is the config digest (classic store) or the manifest digest
 * (containerd store), or the load is refused. Containers are made from that id, never from
 * the name, so a name moved to another image afterwards cannot change what runs.
 */
export class ImageLoader {
  private readonly engine: string;

  constructor(
    private readonly docker: Docker,
    private readonly store: ImageStore,
    /** Called with each digest this loader loaded or found on the engine (the home keeps a record, for gc). */
    private readonly onLoaded: (digest: Digest) => Promise<void> = async () => undefined,
  ) {
    const modem = docker.modem as { socketPath?: string; host?: string; port?: number };
    this.engine = modem.socketPath ?? `${modem.host}:${modem.port}`;
  }

  /** Makes `digest` runnable on the engine (at once when it already is); resolves with the engine's image id. */
  ensure(digest: Digest): Promise<string> {
    const key = `${this.engine} ${digest}`;
    const known = loaded.get(key);
    if (known) return Promise.resolve(known);
    let pending = inflight.get(key);
    if (!pending) {
      pending = this.load(digest)
        .then(async (id) => {
          await this.onLoaded(digest);
          loaded.set(key, id);
          return id;
        })
        .finally(() => inflight.delete(key));
      inflight.set(key, pending);
    }
    return pending;
  }

  /** Forgets that `digest` was loaded (someone removed it from the engine): the next ensure looks again. */
  forget(digest: Digest): void {
    loaded.delete(`${this.engine} ${digest}`);
  }

  /** The engine's id of `digest` (whose config is `config`) when the engine holds it under its imago name, else undefined. */
  private async present(digest: Digest, config: Digest): Promise<string | undefined> {
    try {
      const info = await this.docker.getImage(imageRef(digest)).inspect();
      if (info.Id === config || info.Id === digest) return info.Id;
      throw new ProviderError(`the engine's image '${imageRef(digest)}' is ${info.Id}, not imago's ${digest} (config ${config}): remove it (docker rmi) and deploy again`);
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return undefined;
      throw engineError(`failed to inspect image ${digest} on the engine`, error);
    }
  }

  private async load(digest: Digest): Promise<string> {
    const bytes = await this.store.blobs.read(digest);
    const manifest = parseJsonAs(bytes, ManifestSchema, `manifest ${digest}`);
    const found = await this.present(digest, manifest.config.digest);
    if (found) return found;
    const files = layoutFiles({ digest, manifest, manifestSize: bytes.length, tags: [imageRef(digest)], annotations: {}, docker: true });
    try {
      await loadArchive(this.docker, layoutTarStream(files, this.store.blobs));
    } catch (error) {
      throw engineError(`failed to load image ${digest} into the engine`, error);
    }
    const id = await this.present(digest, manifest.config.digest);
    if (!id) throw new ProviderError(`failed to load image ${digest} into the engine: it accepted the archive but has no '${imageRef(digest)}'`);
    return id;
  }
}

/** Sends a docker archive to `POST /images/load` and waits for the engine to finish with it. */
export async function loadArchive(docker: Docker, archive: NodeJS.ReadableStream | Buffer): Promise<void> {
  const body = Buffer.isBuffer(archive) ? Readable.from([archive]) : archive;
  const response = await docker.loadImage(body, { quiet: true });
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(response, (error: Error | null, output: Array<{ error?: string }>) => {
      const failed = error?.message ?? output.find((line) => line.error)?.error;
      if (failed) reject(new Error(failed));
      else resolve();
    });
  });
}

import { ImageError, ImagoError, reasonOf } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import { isGzipLayer } from '../oci/types.js';
import type { ImageStore } from '../store/image-store.js';
import { openImportSource } from './import-source.js';
import { resolveImportTags } from './import-tags.js';
import { hostArchitecture } from './pick-manifest.js';
import { readDockerArchive } from './read-docker-archive.js';
import { readOciLayout } from './read-oci-layout.js';
import { ConfigSchema, parseJsonAs } from './schemas.js';
import type { StagedImage } from './staged-image.js';
import { Staging } from './staging.js';
import { verifyLayer } from './verify-layer.js';

/** Options of {@link importImage}. */
export interface ImportOptions {
  /** `name:tag` to apply instead of the archive's names, or a bare `name` to give the archive's tags. */
  tag?: string;
  /** Told about each step as it starts. */
  onProgress?: (event: ImportProgress) => void;
}

/** One step of an import. */
export interface ImportProgress {
  step: 'read' | 'verify-layer' | 'store';
  detail: string;
}

/** What an import stored. */
export interface ImportResult {
  digest: Digest;
  tags: string[];
  warnings: string[];
}

/**
 * Imports an image from an OCI layout (folder or tar) or a `docker save` archive. Every blob
 * is staged and checked (digest, size, diff ids, layer entry names) before anything is
 * stored: a corrupt or hostile archive is refused whole, with nothing registered.
 *
 * @example
 * const { digest, tags } = await importImage(store, 'web.tar', { tag: 'web:1.4' });
 */
export async function importImage(store: ImageStore, path: string, options: ImportOptions = {}): Promise<ImportResult> {
  const staging = new Staging(store.blobs);
  const warnings: string[] = [];
  const progress = (step: ImportProgress['step'], detail: string) => options.onProgress?.({ step, detail });
  const release = store.lease('import');
  try {
    progress('read', path);
    const source = await openImportSource(path, staging, (message) => warnings.push(message));
    let image: StagedImage;
    if (await source.has('index.json')) image = await readOciLayout(source, staging, { requested: options.tag, architecture: hostArchitecture() });
    else if (await source.has('manifest.json')) image = await readDockerArchive(source, staging, { requested: options.tag });
    else throw new ImageError(`not an OCI layout or a docker archive: it has neither index.json nor manifest.json`, { badInput: true });
    warnings.push(...image.warnings);

    await verifyImage(image, staging, progress);
    const naming = resolveImportTags(image.names, options.tag);
    if ('error' in naming) throw new ImageError(naming.error, { badInput: true });
    warnings.push(...naming.warnings);

    const digest = image.manifest.digest;
    progress('store', digest);
    for (const layer of image.layers) await staging.commit(layer.file);
    await staging.commit(image.config.file);
    await staging.commit(image.manifest);
    const size = image.manifest.size + image.config.file.size + image.layers.reduce((sum, l) => sum + l.file.size, 0);
    const provenance = Object.keys(image.annotations).length > 0 ? image.annotations : undefined;
    store.addImage({ digest, configDigest: image.config.descriptor.digest, size, source: 'import', provenance });
    for (const ref of naming.tags) {
      const colon = ref.lastIndexOf(':');
      await store.tag(ref.slice(0, colon), ref.slice(colon + 1), digest);
    }
    return { digest, tags: naming.tags, warnings };
  } catch (error) {
    const badInput = error instanceof ImagoError && error.exitCode === 2;
    throw new ImageError(`failed to import image '${path}': ${reasonOf(error)}`, { cause: error, badInput });
  } finally {
    release();
    await staging.discard();
  }
}

/** Checks the config's diff ids against the layers, then reads every layer through the check pass. */
async function verifyImage(image: StagedImage, staging: Staging, progress: (step: 'verify-layer', detail: string) => void): Promise<void> {
  const config = parseJsonAs(await staging.read(image.config.file), ConfigSchema, `config ${image.config.descriptor.digest}`);
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== image.layers.length) {
    throw new ImageError(`the manifest lists ${count(image.layers.length, 'layer')} but the config's rootfs.diff_ids lists ${count(diffIds.length, 'diff id')}`, { badInput: true });
  }
  for (const [i, layer] of image.layers.entries()) {
    progress('verify-layer', layer.descriptor.digest);
    await verifyLayer({ digest: layer.descriptor.digest, path: layer.file.path, gzip: isGzipLayer(layer.descriptor.mediaType), diffId: diffIds[i]! });
  }
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

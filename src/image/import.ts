import { ociArchitecture } from '../bake/image-config.js';
import { ImageError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import { isGzipLayer } from '../oci/types.js';
import type { ImageStore } from '../store/image-store.js';
import { importLimits, type ImportLimits } from './import-limits.js';
import { openImportSource, type ImportSource } from './import-source.js';
import { resolveImportTags } from './import-tags.js';
import { hostVariant } from './pick-manifest.js';
import { readDockerArchive } from './read-docker-archive.js';
import { readOciLayout } from './read-oci-layout.js';
import { ConfigSchema, parseJsonAs } from './schemas.js';
import type { StagedImage } from './staged-image.js';
import { Staging } from './staging.js';
import { verifyLayer } from './verify-layer.js';
import { wrapImageError } from './wrap-error.js';

/** Options of {@link importImage}. */
export interface ImportOptions {
  /** `name:tag` to apply instead of the archive's names, or a bare `name` to give the archive's tags. */
  tag?: string;
  /** Move tags that already point at another image (without it, such an import is refused). */
  force?: boolean;
  /** Overrides of {@link DEFAULT_IMPORT_LIMITS} (tests use tiny ones). */
  limits?: Partial<ImportLimits>;
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
 * stored: a corrupt or hostile archive is refused whole, with nothing registered. A tag that
 * already names another image is moved only with `force`.
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
    const limits = importLimits(options.limits);
    progress('read', path);
    const source = await openImportSource(path, staging, (message) => warnings.push(message), limits);
    const image = await readImage(source, staging, options.tag, limits);
    warnings.push(...image.warnings);
    const digest = image.manifest.digest;

    const naming = resolveImportTags(image.names, options.tag);
    if ('error' in naming) throw new ImageError(naming.error, { badInput: true });
    if (naming.tags.length > limits.maxTags) {
      throw new ImageError(`the archive gives its image ${naming.tags.length} tags, more than the ${limits.maxTags} one import applies: choose one with --tag <name:tag>`, { badInput: true });
    }
    warnings.push(...naming.warnings);
    if (!options.force) refuseMovingTags(store, naming.tags, digest);

    await verifyImage(image, staging, limits, progress);

    progress('store', digest);
    for (const layer of image.layers) await staging.commit(layer.file);
    await staging.commit(image.config.file);
    await staging.commit(image.manifest);
    const size = image.manifest.size + image.config.file.size + image.layers.reduce((sum, l) => sum + l.file.size, 0);
    const provenance = Object.keys(image.annotations).length > 0 ? image.annotations : undefined;
    store.addImage({ digest, configDigest: image.config.descriptor.digest, size, source: 'import', provenance });
    await store.tagMany(naming.tags, digest);
    return { digest, tags: naming.tags, warnings };
  } catch (error) {
    throw wrapImageError(`failed to import image '${path}'`, error);
  } finally {
    release();
    await staging.discard();
  }
}

/** Reads the image an OCI layout (index.json) or a legacy docker archive (manifest.json only) holds. */
async function readImage(source: ImportSource, staging: Staging, requested: string | undefined, limits: ImportLimits): Promise<StagedImage> {
  if (await source.has('index.json')) {
    return readOciLayout(source, staging, { requested, architecture: ociArchitecture(), variant: hostVariant(), maxManifests: limits.maxManifests });
  }
  if (await source.has('manifest.json')) return readDockerArchive(source, staging, { requested });
  throw new ImageError(`not an OCI layout or a docker archive: it has neither index.json nor manifest.json`, { badInput: true });
}

/** Refuses an import that would move a tag off the image it names now, naming each tag, both digests and `--force`. */
function refuseMovingTags(store: ImageStore, tags: string[], digest: Digest): void {
  const moved = tags.flatMap((ref) => {
    const colon = ref.lastIndexOf(':');
    const current = store.tagsOf(ref.slice(0, colon)).find((t) => t.tag === ref.slice(colon + 1));
    return current && current.digest !== digest ? [`'${ref}' from ${current.digest}`] : [];
  });
  if (moved.length === 0) return;
  const what = moved.length === 1 ? 'tag' : 'tags';
  throw new ImageError(`refusing to move ${what} ${moved.join(', ')} to ${digest}: import with --force to move ${moved.length === 1 ? 'it' : 'them'}`, {
    badInput: true,
  });
}

/** Checks the config's diff ids against the layers, then reads every layer through the check pass (a repeated one once). */
async function verifyImage(image: StagedImage, staging: Staging, limits: ImportLimits, progress: (step: 'verify-layer', detail: string) => void): Promise<void> {
  const config = parseJsonAs(await staging.read(image.config.file), ConfigSchema, `config ${image.config.descriptor.digest}`);
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== image.layers.length) {
    throw new ImageError(`the manifest lists ${count(image.layers.length, 'layer')} but the config's rootfs.diff_ids lists ${count(diffIds.length, 'diff id')}`, { badInput: true });
  }
  const verified = new Set<string>();
  for (const [i, layer] of image.layers.entries()) {
    const check = { digest: layer.descriptor.digest, path: layer.file.path, size: layer.file.size, gzip: isGzipLayer(layer.descriptor.mediaType), diffId: diffIds[i]! };
    const key = `${check.digest} ${check.gzip} ${check.diffId}`;
    if (verified.has(key)) continue;
    progress('verify-layer', layer.descriptor.digest);
    await verifyLayer(check, limits);
    verified.add(key);
  }
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

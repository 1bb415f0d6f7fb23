import { ImageError, ImagoError, reasonOf } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import { parseImageRef } from '../oci/reference.js';
import type { ImageStore } from '../store/image-store.js';
import { layoutFiles } from './layout-files.js';
import { ManifestSchema, parseJsonAs } from './schemas.js';
import { writeLayoutDir, writeLayoutTar } from './write-layout.js';

/** `oci`: an OCI layout in a tar file; `oci-dir`: an OCI layout folder; `docker`: a tar `docker load` reads (also an OCI layout). */
export type ExportFormat = 'oci' | 'oci-dir' | 'docker';

const FORMATS: readonly ExportFormat[] = ['oci', 'oci-dir', 'docker'];

/** Options of {@link exportImage}. */
export interface ExportOptions {
  format: ExportFormat;
}

/** What an export wrote. */
export interface ExportResult {
  digest: Digest;
  /** The `name:tag`s the archive names the image by. */
  tags: string[];
  path: string;
}

/**
 * Exports a stored image, byte for byte, as an OCI layout (tar or folder) or a docker
 * archive. The archive is written under a temp name and renamed into place when complete.
 * Importing it again gives the same digest.
 *
 * @example
 * await exportImage(store, 'web:1.4', 'web.tar', { format: 'docker' }); // then: docker load -i web.tar
 */
export async function exportImage(store: ImageStore, ref: string, out: string, options: ExportOptions): Promise<ExportResult> {
  if (!FORMATS.includes(options.format)) {
    throw new ImageError(`format: expected one of ${FORMATS.map((f) => `'${f}'`).join(', ')}, got '${String(options.format)}'`, { badInput: true });
  }
  try {
    const digest = store.resolve(ref);
    const tags = tagsFor(store, ref, digest);
    const bytes = await store.blobs.read(digest);
    const manifest = parseJsonAs(bytes, ManifestSchema, `manifest ${digest}`);
    for (const blob of [manifest.config, ...manifest.layers]) {
      const size = await store.blobs.size(blob.digest);
      if (size !== blob.size) throw new ImageError(`blob ${blob.digest} is ${size === undefined ? 'missing from the store' : `${size} bytes, not ${blob.size}`}`);
    }
    const files = layoutFiles({
      digest,
      manifest,
      manifestSize: bytes.length,
      tags,
      annotations: stringValues(store.getImage(digest)?.provenance),
      docker: options.format === 'docker',
    });
    if (options.format === 'oci-dir') await writeLayoutDir(out, files, store.blobs);
    else await writeLayoutTar(out, files, store.blobs);
    return { digest, tags, path: out };
  } catch (error) {
    const notFound = error instanceof ImageError && error.notFound;
    const badInput = error instanceof ImagoError && error.exitCode === 2;
    throw new ImageError(`failed to export image '${ref}' to '${out}': ${reasonOf(error)}`, { cause: error, notFound, badInput });
  }
}

/** The tag the reference names, or every tag of the image when it was named by digest. */
function tagsFor(store: ImageStore, ref: string, digest: Digest): string[] {
  const all = store.tagsOfDigest(digest);
  const parsed = parseImageRef(ref);
  if (!('error' in parsed) && parsed.kind === 'tag' && all.includes(`${parsed.name}:${parsed.tag}`)) return [`${parsed.name}:${parsed.tag}`];
  return all;
}

/** The string entries of a provenance record, as index annotations. */
function stringValues(record: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(record ?? {})) if (typeof value === 'string') out[key] = value;
  return out;
}

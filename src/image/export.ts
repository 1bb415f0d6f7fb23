import { ImageError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import { MediaType } from '../oci/types.js';
import { ENVELOPE_MEDIA_TYPE } from '../sign/signatures.js';
import type { ImageStore } from '../store/image-store.js';
import { layoutFiles } from './layout-files.js';
import { ManifestSchema, parseJsonAs } from './schemas.js';
import { wrapImageError } from './wrap-error.js';
import { writeLayoutDir, writeLayoutTar } from './write-layout.js';

/** `oci`: an OCI layout in a tar file; `oci-dir`: an OCI layout folder; `docker`: a tar `docker load` reads (also an OCI layout). */
export type ExportFormat = 'oci' | 'oci-dir' | 'docker';

const FORMATS: readonly ExportFormat[] = ['oci', 'oci-dir', 'docker'];

/** Options of {@link exportImage}. */
export interface ExportOptions {
  format: ExportFormat;
  /** Cancels the export: it stops, removes what it wrote, and fails with "the export was cancelled". */
  signal?: AbortSignal;
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
 * archive; an OCI layout also carries its signatures (artifacts referring to it, listed in the
 * index by digest). The archive is written under a temp name and renamed into place when complete; a
 * failed or cancelled export leaves nothing behind. Importing it again gives the same digest.
 *
 * @example
 * await exportImage(store, 'web:1.4', 'web.tar', { format: 'docker' }); // then: docker load -i web.tar
 */
export async function exportImage(store: ImageStore, ref: string, out: string, options: ExportOptions): Promise<ExportResult> {
  if (!FORMATS.includes(options.format)) {
    throw new ImageError(`format: expected one of ${FORMATS.map((f) => `'${f}'`).join(', ')}, got '${String(options.format)}'`, { badInput: true });
  }
  const { signal } = options;
  try {
    signal?.throwIfAborted();
    // The tag the reference names, or every tag of the image when it was named by digest.
    const { digest, tag } = store.lookup(ref);
    const tags = tag ? [`${tag.name}:${tag.tag}`] : store.tagsOfDigest(digest);
    const bytes = await store.blobs.read(digest);
    const manifest = parseJsonAs(bytes, ManifestSchema, `manifest ${digest}`);
    for (const blob of [manifest.config, ...manifest.layers]) {
      const size = await store.blobs.size(blob.digest);
      if (size !== blob.size) throw new ImageError(`blob ${blob.digest} is ${size === undefined ? 'missing from the store' : `${size} bytes, not ${blob.size}`}`);
    }
    // Its signatures, in OCI layouts (a docker archive is for `docker load`, which wants images only).
    // One that cannot be read whole is left out: `imago image verify` is where it is reported.
    const referrers = [];
    for (const referrer of options.format === 'docker' ? [] : store.referrersOf(digest)) {
      const blobs = await store.artifactBlobs(referrer).catch(() => undefined);
      const whole = blobs && (await Promise.all(blobs.map(async ([d, size]) => (await store.blobs.size(d)) === size))).every(Boolean);
      if (blobs && whole) referrers.push({ descriptor: { mediaType: MediaType.manifest, artifactType: ENVELOPE_MEDIA_TYPE, digest: referrer, size: blobs[0]![1] }, blobs });
    }
    const files = layoutFiles({
      digest,
      manifest,
      manifestSize: bytes.length,
      tags,
      annotations: stringValues(store.getImage(digest)?.provenance),
      docker: options.format === 'docker',
      referrers,
    });
    if (options.format === 'oci-dir') await writeLayoutDir(out, files, store.blobs, signal);
    else await writeLayoutTar(out, files, store.blobs, signal);
    return { digest, tags, path: out };
  } catch (error) {
    const reason = signal?.aborted ? new ImageError('the export was cancelled', { cause: error }) : error;
    throw wrapImageError(`failed to export image '${ref}' to '${out}'`, reason);
  }
}

/** The string entries of a provenance record, as index annotations. */
function stringValues(record: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(record ?? {})) if (typeof value === 'string') out[key] = value;
  return out;
}

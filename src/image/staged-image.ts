import { ImageError } from '../errors.js';
import type { Descriptor } from '../oci/types.js';
import type { FoundNames } from './import-tags.js';
import type { StagedFile } from './staging.js';

/** An image read from an archive into staging: every blob present and matching its descriptor. */
export interface StagedImage {
  /** The manifest exactly as it will be stored (an OCI layout's own bytes, or a converted docker manifest). */
  manifest: StagedFile;
  config: { file: StagedFile; descriptor: Descriptor };
  layers: Array<{ file: StagedFile; descriptor: Descriptor }>;
  /** The names the archive gives the image. */
  names: FoundNames;
  /** String annotations of the archive's index (kept as the image's provenance). */
  annotations: Record<string, string>;
  warnings: string[];
}

/**
 * Refuses a staged blob whose measured digest or size differs from its descriptor. The
 * message names what was expected and the size found, never the digest of what was found:
 * nothing derived from content that failed a check is echoed.
 */
export function checkBlob(file: StagedFile, descriptor: Descriptor, what: string): StagedFile {
  if (file.digest !== descriptor.digest || file.size !== descriptor.size) {
    const got = file.size === descriptor.size ? `${file.size} bytes that do not` : `${file.size} bytes`;
    throw new ImageError(`${what} ${descriptor.digest} is corrupt: expected ${descriptor.size} bytes hashing to ${descriptor.digest}, got ${got}`, { badInput: true });
  }
  return file;
}

import type { Descriptor, Manifest } from '../oci/types.js';
import { MediaType } from '../oci/types.js';

/**
 * Builds an OCI image manifest in imago's canonical form: fixed key order, descriptors
 * with only `mediaType`, `digest` and `size`. The same config and layers always give the
 * same bytes, so the same digest.
 */
export function buildManifest(config: Descriptor, layers: Descriptor[]): Manifest {
  const strip = (d: Descriptor): Descriptor => ({ mediaType: d.mediaType, digest: d.digest, size: d.size });
  return { schemaVersion: 2, mediaType: MediaType.manifest, config: strip(config), layers: layers.map(strip) };
}

/** The bytes a manifest is stored as: compact JSON, keys in the order built. */
export function manifestBytes(manifest: Manifest): Buffer {
  return Buffer.from(JSON.stringify(manifest));
}

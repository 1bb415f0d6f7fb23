import { mkdir } from 'node:fs/promises';
import type { Digest } from '../oci/digest.js';
import { applyLayer, type UnpackOptions } from '../oci/unpack.js';
import type { ImageStore } from '../store/image-store.js';

/** Unpacks a stored image's layers, in order, into `root` (created if missing). */
export async function unpackImage(store: ImageStore, digest: Digest, root: string, options: UnpackOptions = {}): Promise<void> {
  const manifest = await store.manifest(digest);
  await mkdir(root, { recursive: true });
  for (const layer of manifest.layers) await applyLayer(root, store.blobs.stream(layer.digest), options);
}

import { sha256File, type Digest } from '../oci/digest.js';
import type { Manifest } from '../oci/types.js';
import type { ImageStore } from './image-store.js';

/** One problem `verifyStore` found. */
export interface StoreProblem {
  kind: 'corrupt-blob' | 'missing-blob' | 'dangling-tag';
  /** The blob digest or `name:tag` concerned. */
  subject: string;
  detail: string;
}

/** What a full check of the store found. */
export interface StoreReport {
  blobs: number;
  images: number;
  problems: StoreProblem[];
}

/**
 * Checks the whole store: every blob hashes to its name, and every recorded image has its
 * manifest, config and layers. Reads every byte, so it takes as long as the store is large.
 */
export async function verifyStore(store: ImageStore, onBlob?: (done: number, total: number) => void): Promise<StoreReport> {
  const problems: StoreProblem[] = [];
  const blobs = await store.blobs.list();
  const present = new Set<Digest>();
  let done = 0;
  for (const digest of blobs) {
    const actual = await sha256File(store.blobs.path(digest)).catch((error: Error) => `unreadable: ${error.message}`);
    if (actual === digest) present.add(digest);
    else problems.push({ kind: 'corrupt-blob', subject: digest, detail: actual.startsWith('sha256:') ? `content hashes to ${actual}` : actual });
    onBlob?.(++done, blobs.length);
  }
  const images = store.listImages();
  for (const image of images) {
    if (!present.has(image.digest)) {
      problems.push({ kind: 'missing-blob', subject: image.digest, detail: `manifest of ${image.tags.join(', ') || 'an untagged image'} is missing or corrupt` });
      continue;
    }
    const manifest = await store.blobs.readJson<Manifest>(image.digest);
    for (const blob of [manifest.config, ...manifest.layers]) {
      if (!present.has(blob.digest)) {
        problems.push({ kind: 'missing-blob', subject: blob.digest, detail: `needed by ${image.tags.join(', ') || image.digest} is missing or corrupt` });
      }
    }
  }
  for (const tag of store.listTags()) {
    if (!store.getImage(tag.digest)) problems.push({ kind: 'dangling-tag', subject: `${tag.name}:${tag.tag}`, detail: `points at unknown image ${tag.digest}` });
  }
  return { blobs: blobs.length, images: images.length, problems };
}

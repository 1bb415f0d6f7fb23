import { Readable } from 'node:stream';
import tar from 'tar-stream';
import type { ImageStore } from '../../src/store/image-store.js';
import type { Digest } from '../../src/oci/digest.js';

/** One tar entry as read back from a layer. */
export interface ReadEntry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  linkname: string | null;
  content: string;
}

/** Reads every entry of a stored layer. */
export async function readLayer(store: ImageStore, digest: Digest): Promise<ReadEntry[]> {
  const extract = tar.extract();
  Readable.from(await store.blobs.read(digest)).pipe(extract);
  const out: ReadEntry[] = [];
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    const h = entry.header;
    out.push({
      name: h.name,
      type: h.type ?? 'file',
      mode: h.mode ?? 0,
      uid: h.uid ?? 0,
      gid: h.gid ?? 0,
      mtime: h.mtime?.getTime() ?? -1,
      linkname: h.linkname ?? null,
      content: Buffer.concat(chunks).toString('utf8'),
    });
  }
  return out;
}

import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { hashDigest, sha256, type Digest } from './digest.js';
import { MediaType } from './types.js';
import type { BlobStore } from '../store/blob-store.js';

/** The fixed timestamp of every entry: reproducible layers carry no build time. */
export const EPOCH = new Date(0);

/** One entry of a layer, before it is written. Paths are relative (`usr/bin/node`), never starting with `/`. */
export type LayerEntry =
  | { type: 'directory'; path: string; mode: number; uid: number; gid: number }
  | { type: 'file'; path: string; mode: number; uid: number; gid: number; size: number; source: FileSource }
  | { type: 'symlink'; path: string; target: string; uid: number; gid: number }
  | { type: 'hardlink'; path: string; target: string; uid: number; gid: number }
  /** Deletes `path` from lower layers (written as a `.wh.` entry). */
  | { type: 'whiteout'; path: string };

/**
 * Where a file entry's bytes come from. With `digest`, the bytes read while writing must
 * hash to it: a file that changed since it was hashed (and so since its cache key was
 * made) fails the layer instead of storing other content under that key.
 */
export type FileSource = { file: string; digest?: Digest } | { data: Buffer };

/**
 * Files up to this size are read whole, in one synchronous call, rather than streamed: for
 * the many small files of a typical tree this is several times faster than a promise per
 * open, stat, read and close on the thread pool (measured in BENCHMARKS.md).
 */
export const SMALL_FILE = 1024 * 1024;

/** The largest uid or gid a plain tar header holds. */
export const MAX_OWNER_ID = 0o7777777;

/** A written layer. Layers are stored uncompressed, so `digest` equals `diffId`. */
export interface WrittenLayer {
  digest: Digest;
  diffId: Digest;
  size: number;
  mediaType: string;
}

/** Sorts entries by path, byte-wise, so the same set of entries always gives the same tar. */
export function sortEntries(entries: LayerEntry[]): LayerEntry[] {
  return [...entries].sort((a, b) => {
    const x = a.path;
    const y = b.path;
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

/** Adds a directory entry for every missing parent of the given entries (mode 0755, root-owned). */
export function withParents(entries: LayerEntry[]): LayerEntry[] {
  const have = new Set(entries.map((e) => e.path));
  const out = [...entries];
  for (const entry of entries) {
    const parts = entry.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!have.has(dir)) {
        have.add(dir);
        out.push({ type: 'directory', path: dir, mode: 0o755, uid: 0, gid: 0 });
      }
    }
  }
  return out;
}

/**
 * Writes entries as a reproducible, uncompressed tar layer into the blob store: sorted
 * names, fixed mtime, numeric owners without names, modes as given. Returns its digest.
 */
export async function writeLayer(blobs: BlobStore, entries: LayerEntry[]): Promise<WrittenLayer> {
  for (const entry of entries) {
    if ('uid' in entry && (entry.uid > MAX_OWNER_ID || entry.gid > MAX_OWNER_ID)) {
      throw new Error(`'${entry.path}' is owned by ${entry.uid}:${entry.gid}; owners above ${MAX_OWNER_ID} do not fit a tar header`);
    }
  }
  const pack = tar.pack();
  const tmp = blobs.tempPath('layer');
  const hash = createHash('sha256');
  let size = 0;
  const out = createWriteStream(tmp, { mode: 0o644, flush: true });
  const done = pipeline(
    pack,
    async function* (source: AsyncIterable<unknown>) {
      for await (const item of source) {
        const chunk = item as Buffer;
        hash.update(chunk);
        size += chunk.length;
        yield chunk;
      }
    },
    out,
  );
  try {
    for (const entry of sortEntries(entries)) await addEntry(pack, entry);
    pack.finalize();
    await done;
  } catch (error) {
    pack.destroy(error as Error);
    await done.catch(() => undefined);
    await rm(tmp, { force: true });
    throw error;
  }
  const digest = hashDigest(hash);
  await blobs.adopt(tmp, digest);
  return { digest, diffId: digest, size, mediaType: MediaType.layer };
}

/** A tar header as imago writes it (tar-stream fills the rest). */
type Head = Partial<tar.Header> & { name: string };

async function addEntry(pack: tar.Pack, entry: LayerEntry): Promise<void> {
  const base = { mtime: EPOCH, uname: '', gname: '' };
  switch (entry.type) {
    case 'directory':
      return addHeader(pack, { ...base, name: `${entry.path}/`, type: 'directory', mode: entry.mode, uid: entry.uid, gid: entry.gid });
    case 'symlink':
      return addHeader(pack, { ...base, name: entry.path, type: 'symlink', linkname: entry.target, mode: 0o777, uid: entry.uid, gid: entry.gid });
    case 'hardlink':
      return addHeader(pack, { ...base, name: entry.path, type: 'link', linkname: entry.target, mode: 0o644, uid: entry.uid, gid: entry.gid });
    case 'whiteout': {
      const slash = entry.path.lastIndexOf('/');
      const name = slash < 0 ? `.wh.${entry.path}` : `${entry.path.slice(0, slash)}/.wh.${entry.path.slice(slash + 1)}`;
      return addHeader(pack, { ...base, name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0 });
    }
    case 'file': {
      const header = { ...base, name: entry.path, type: 'file' as const, mode: entry.mode, uid: entry.uid, gid: entry.gid, size: entry.size };
      if ('data' in entry.source) return addHeader(pack, header, entry.source.data);
      if (entry.size <= SMALL_FILE) return addHeader(pack, header, readChecked(entry.source.file, entry.size, entry.source.digest));
      return addFile(pack, header, entry.source.file, entry.source.digest);
    }
  }
}

function addHeader(pack: tar.Pack, header: Head, data?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry(header as tar.Header, data ?? Buffer.alloc(0), (error) => (error ? reject(error) : resolve()));
  });
}

/** A small file's bytes, checked against the size and digest it was listed with. */
function readChecked(file: string, size: number, expected: Digest | undefined): Buffer {
  const fail = (reason: string) => new Error(`failed to add '${file}' to a layer (did it change while baking?): ${reason}`);
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (error) {
    throw fail((error as Error).message);
  }
  if (data.length !== size) throw fail(`it has ${data.length} bytes, not ${size} as when it was listed`);
  if (expected && sha256(data) !== expected) throw fail(`its content hashes to ${sha256(data)}, not ${expected} as when it was listed`);
  return data;
}

function addFile(pack: tar.Pack, header: Head, file: string, expected: Digest | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (error: Error) =>
      reject(new Error(`failed to add '${file}' to a layer (did it change while baking?): ${error.message}`, { cause: error }));
    const hash = createHash('sha256');
    const sink = pack.entry(header as tar.Header, (error) => {
      if (error) return fail(error);
      const actual = hashDigest(hash);
      if (expected && actual !== expected) return fail(new Error(`its content hashes to ${actual}, not ${expected} as when it was listed`));
      resolve();
    });
    sink.on('error', fail);
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', (error) => {
        sink.destroy(error);
        fail(error);
      })
      .pipe(sink);
  });
}

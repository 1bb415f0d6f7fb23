import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { ImageError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import { EPOCH } from '../oci/layer-writer.js';
import type { BlobStore } from '../store/blob-store.js';
import type { LayoutFile } from './layout-files.js';

/**
 * Writes layout files as one tar file. The tar is written beside `out` under a temp name
 * and renamed over it only when complete; on a failure, or when `signal` aborts, the temp
 * file is closed and removed, so an export leaves no half file.
 */
export async function writeLayoutTar(out: string, files: LayoutFile[], blobs: BlobStore, signal?: AbortSignal): Promise<void> {
  const tmp = tempBeside(out);
  const pack = tar.pack();
  const sink = createWriteStream(tmp, { mode: 0o644, flags: 'wx' });
  try {
    await Promise.all([pipeline(pack, sink, { signal }), fillPack(pack, files, blobs, signal)]);
    await syncFile(tmp);
    await rename(tmp, out);
  } catch (error) {
    pack.destroy();
    await closed(sink); // else a write stream still opening could create the file after its removal
    await rm(tmp, { force: true });
    throw error;
  }
}

/**
 * Layout files as a tar stream, filled while it is read (for `docker load` over the API,
 * with no file in between). A failure while filling destroys the stream with the error.
 */
export function layoutTarStream(files: LayoutFile[], blobs: BlobStore, signal?: AbortSignal): Readable {
  const pack = tar.pack();
  fillPack(pack, files, blobs, signal).catch(() => undefined); // fillPack destroys the pack with its error
  return Readable.from(pack, { objectMode: false });
}

/**
 * Writes layout files as a folder: built under a temp name beside `out`, then renamed to it.
 * `out` may be missing or an empty folder; anything else is refused. On a failure, or when
 * `signal` aborts, the temp folder is removed.
 */
export async function writeLayoutDir(out: string, files: LayoutFile[], blobs: BlobStore, signal?: AbortSignal): Promise<void> {
  const existing = await stat(out).catch(() => undefined);
  if (existing && (!existing.isDirectory() || (await readdir(out)).length > 0)) {
    throw new ImageError(`'${out}' already exists and is not an empty folder`, { badInput: true });
  }
  const tmp = tempBeside(out);
  try {
    await mkdir(join(tmp, 'blobs', 'sha256'), { recursive: true, mode: 0o755 });
    for (const file of files) {
      signal?.throwIfAborted();
      if ('data' in file) await writeFile(join(tmp, file.name), file.data, { mode: 0o644, signal });
      else await copyInto(blobs.stream(file.blob), join(tmp, file.name), signal);
    }
    await rename(tmp, out);
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    throw error;
  }
}

function tempBeside(out: string): string {
  return join(dirname(out), `.${basename(out)}.imago-${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
}

/** Adds every file to the pack, then finalizes it; destroys it on a failure. */
async function fillPack(pack: tar.Pack, files: LayoutFile[], blobs: BlobStore, signal: AbortSignal | undefined): Promise<void> {
  try {
    for (const dir of ['blobs/', 'blobs/sha256/']) await addEntry(pack, { name: dir, type: 'directory', mode: 0o755 });
    for (const file of files) {
      signal?.throwIfAborted();
      if ('data' in file) await addEntry(pack, { name: file.name, type: 'file', mode: 0o644, size: file.data.length }, file.data);
      else await addBlob(pack, file.name, file.size, blobs, file.blob, signal);
    }
    pack.finalize();
  } catch (error) {
    pack.destroy(error as Error);
    throw error;
  }
}

function addEntry(pack: tar.Pack, header: Partial<tar.Header> & { name: string }, data?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry({ mtime: EPOCH, uid: 0, gid: 0, uname: '', gname: '', ...header }, data ?? Buffer.alloc(0), (error) => (error ? reject(error) : resolve()));
  });
}

async function addBlob(pack: tar.Pack, name: string, size: number, blobs: BlobStore, digest: Digest, signal: AbortSignal | undefined): Promise<void> {
  let entryError: Error | undefined;
  const entered = new Promise<void>((resolve, reject) => {
    const sink = pack.entry({ name, type: 'file', mode: 0o644, size, mtime: EPOCH, uid: 0, gid: 0, uname: '', gname: '' }, (error) => (error ? reject((entryError = error)) : resolve()));
    pipeline(blobs.stream(digest), sink, { signal }).catch((error: Error) => reject(entryError ?? error));
  });
  try {
    await entered;
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new ImageError(`failed to copy blob '${digest}' into the archive: ${(error as Error).message}`, { cause: error });
  }
}

/** Streams `source` into a new file; on a failure, returns only once the file is closed. */
async function copyInto(source: Readable, path: string, signal: AbortSignal | undefined): Promise<void> {
  const sink = createWriteStream(path, { mode: 0o644, flags: 'wx' });
  try {
    await pipeline(source, sink, { signal });
  } catch (error) {
    sink.destroy();
    await closed(sink);
    throw error;
  }
}

/** Resolves once a write stream has closed its file (at once if it has). */
function closed(stream: Writable): Promise<void> {
  return stream.closed ? Promise.resolve() : new Promise((resolve) => stream.once('close', () => resolve()));
}

async function syncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

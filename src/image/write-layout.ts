import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { ImageError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import { EPOCH } from '../oci/layer-writer.js';
import type { BlobStore } from '../store/blob-store.js';
import type { LayoutFile } from './layout-files.js';

/**
 * Writes layout files as one tar file. The tar is written beside `out` under a temp name
 * and renamed over it only when complete, so a failed export leaves no half file.
 */
export async function writeLayoutTar(out: string, files: LayoutFile[], blobs: BlobStore): Promise<void> {
  const tmp = tempBeside(out);
  try {
    const pack = tar.pack();
    const done = pipeline(pack, createWriteStream(tmp, { mode: 0o644, flags: 'wx' }));
    done.catch(() => undefined); // observed below
    try {
      for (const dir of ['blobs/', 'blobs/sha256/']) await addEntry(pack, { name: dir, type: 'directory', mode: 0o755 });
      for (const file of files) {
        if ('data' in file) await addEntry(pack, { name: file.name, type: 'file', mode: 0o644, size: file.data.length }, file.data);
        else await addBlob(pack, file.name, file.size, blobs, file.blob);
      }
      pack.finalize();
    } catch (error) {
      pack.destroy(error as Error);
      throw error;
    }
    await done;
    await syncFile(tmp);
    await rename(tmp, out);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}

/**
 * Writes layout files as a folder: built under a temp name beside `out`, then renamed to it.
 * `out` may be missing or an empty folder; anything else is refused.
 */
export async function writeLayoutDir(out: string, files: LayoutFile[], blobs: BlobStore): Promise<void> {
  const existing = await stat(out).catch(() => undefined);
  if (existing && (!existing.isDirectory() || (await readdir(out)).length > 0)) {
    throw new ImageError(`'${out}' already exists and is not an empty folder`, { badInput: true });
  }
  const tmp = tempBeside(out);
  try {
    await mkdir(join(tmp, 'blobs', 'sha256'), { recursive: true, mode: 0o755 });
    for (const file of files) {
      if ('data' in file) await writeFile(join(tmp, file.name), file.data, { mode: 0o644 });
      else await copyFile(blobs.path(file.blob), join(tmp, file.name));
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

function addEntry(pack: tar.Pack, header: Partial<tar.Header> & { name: string }, data?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry({ mtime: EPOCH, uid: 0, gid: 0, uname: '', gname: '', ...header }, data ?? Buffer.alloc(0), (error) => (error ? reject(error) : resolve()));
  });
}

function addBlob(pack: tar.Pack, name: string, size: number, blobs: BlobStore, digest: Digest): Promise<void> {
  return new Promise((resolve, reject) => {
    const sink = pack.entry({ name, type: 'file', mode: 0o644, size, mtime: EPOCH, uid: 0, gid: 0, uname: '', gname: '' }, (error) =>
      error ? reject(new ImageError(`failed to copy blob '${digest}' into the archive: ${error.message}`, { cause: error })) : resolve(),
    );
    sink.on('error', reject);
    blobs
      .stream(digest)
      .on('error', (error) => {
        sink.destroy(error);
        reject(new ImageError(`failed to read blob '${digest}': ${error.message}`, { cause: error }));
      })
      .pipe(sink);
  });
}

async function syncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

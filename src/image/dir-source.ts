import { constants, type Stats } from 'node:fs';
import { lstat, open, realpath, type FileHandle } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { Readable } from 'node:stream';
import { ImageError } from '../errors.js';
import { safeEntryName } from '../oci/safe-path.js';
import type { Expected, ImportSource } from './import-source.js';
import type { Staging, StagedFile } from './staging.js';

/** For tests: called between the walk to a file and its opening, where a racing writer would strike. */
export interface DirSourceHooks {
  afterWalk?: (name: string) => Promise<void>;
}

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * Reads an archive that is already a folder. Names are checked like tar entry names, and a
 * symlink anywhere on the way to a file is refused: a layout's files are read where they are,
 * never where a link points. The folder may change while it is read, so what is opened is
 * checked again through the open handle: a regular file (a FIFO would block), the very file
 * the walk found (same device and inode), and inside the folder (its real path). A file is
 * sized before it is copied: one larger than the caller reads, or not the size its
 * descriptor gives, is refused unread.
 */
export function openDirSource(root: string, staging: Staging, hooks: DirSourceHooks = {}): ImportSource {
  const cache = new Map<string, Promise<StagedFile>>();
  let realRoot: Promise<string> | undefined;
  const refuse = (name: string, why: string) => new ImageError(`refusing '${name}' in '${root}': ${why}`, { badInput: true });

  /** Walks to a file with lstat, refusing a symlink on the way; its path and lstat, or undefined when missing. */
  const locate = async (name: string): Promise<{ path: string; info: Stats } | undefined> => {
    const parts = safeEntryName(name).split('/');
    let path = root;
    for (const [i, part] of parts.entries()) {
      path = join(path, part);
      const info = await lstat(path).catch(() => undefined);
      if (!info) return undefined;
      if (info.isSymbolicLink()) throw refuse(parts.slice(0, i + 1).join('/'), 'it is a symlink');
      const last = i === parts.length - 1;
      if (!last && !info.isDirectory()) return undefined;
      if (last && !info.isFile()) throw refuse(name, 'not a regular file');
      if (last) return { path, info };
    }
    return undefined;
  };

  /** Checks that an open handle is the regular file the walk found, inside the folder; returns its size. */
  const checkOpened = async (name: string, handle: FileHandle, walked: Stats): Promise<number> => {
    const info = await handle.stat();
    if (!info.isFile()) throw refuse(name, 'not a regular file');
    if (info.dev !== walked.dev || info.ino !== walked.ino) throw refuse(name, 'it was replaced while it was read');
    realRoot ??= realpath(root);
    const base = await realRoot;
    const real = await realpath(`/proc/self/fd/${handle.fd}`);
    if (!real.startsWith(base.endsWith(sep) ? base : base + sep)) throw refuse(name, 'it lies outside the folder');
    return info.size;
  };

  const checkSize = (name: string, size: number, expected: Expected): void => {
    if (expected.size !== undefined && size !== expected.size) throw refuse(name, `it is ${size} bytes, but its descriptor says ${expected.size}`);
    if (expected.maxBytes !== undefined && size > expected.maxBytes) {
      throw refuse(name, `it is ${size} bytes, more than the ${expected.maxBytes} an import reads into memory`);
    }
  };

  const stageFile = async (name: string, expected: Expected): Promise<StagedFile> => {
    const found = await locate(name);
    if (!found) throw new ImageError(`'${name}' is missing from '${root}'`, { badInput: true });
    await hooks.afterWalk?.(name);
    const handle = await open(found.path, OPEN_FLAGS).catch((error: NodeJS.ErrnoException) => {
      throw error.code === 'ELOOP' ? refuse(name, 'it is a symlink') : new ImageError(`failed to open '${name}' in '${root}': ${error.message}`, { cause: error });
    });
    try {
      const size = await checkOpened(name, handle, found.info);
      checkSize(name, size, expected);
      // Never more than the size just checked, should the file grow while it is copied.
      return await staging.stage(size === 0 ? Readable.from([]) : handle.createReadStream({ start: 0, end: size - 1, autoClose: false }));
    } finally {
      await handle.close();
    }
  };

  return {
    description: root,
    has: async (name) => (await locate(name)) !== undefined,
    get(name, expected = {}) {
      const key = safeEntryName(name);
      let staged = cache.get(key);
      if (!staged) {
        staged = stageFile(key, expected);
        cache.set(key, staged);
      }
      return staged;
    },
  };
}

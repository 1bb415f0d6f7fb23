import { constants } from 'node:fs';
import { lstat, open } from 'node:fs/promises';
import { join } from 'node:path';
import { ImageError } from '../errors.js';
import { safeEntryName } from '../oci/safe-path.js';
import type { ImportSource } from './import-source.js';
import type { Staging, StagedFile } from './staging.js';

/**
 * Reads an archive that is already a folder. Names are checked like tar entry names, and a
 * symlink anywhere on the way to a file is refused: a layout's files are read where they are,
 * never where a link points.
 */
export function openDirSource(root: string, staging: Staging): ImportSource {
  const cache = new Map<string, Promise<StagedFile>>();

  const locate = async (name: string): Promise<string | undefined> => {
    const parts = safeEntryName(name).split('/');
    let path = root;
    for (const [i, part] of parts.entries()) {
      path = join(path, part);
      const info = await lstat(path).catch(() => undefined);
      if (!info) return undefined;
      if (info.isSymbolicLink()) throw new ImageError(`refusing '${parts.slice(0, i + 1).join('/')}' in '${root}': it is a symlink`, { badInput: true });
      const last = i === parts.length - 1;
      if (!last && !info.isDirectory()) return undefined;
      if (last && !info.isFile()) throw new ImageError(`refusing '${name}' in '${root}': not a regular file`, { badInput: true });
    }
    return path;
  };

  const stageFile = async (name: string): Promise<StagedFile> => {
    const path = await locate(name);
    if (!path) throw new ImageError(`'${name}' is missing from '${root}'`, { badInput: true });
    const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    return staging.stage(handle.createReadStream());
  };

  return {
    description: root,
    has: async (name) => (await locate(name)) !== undefined,
    get(name) {
      const key = safeEntryName(name);
      let staged = cache.get(key);
      if (!staged) {
        staged = stageFile(key);
        cache.set(key, staged);
      }
      return staged;
    },
  };
}

import { chmod, lstat, mkdir, readlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { ImageError } from '../errors.js';

/**
 * Checks a tar entry name and returns it relative and normalised (`usr/bin/node`).
 * Absolute names and names with a `..` segment are refused: an archive never names a
 * place outside the folder it is unpacked into.
 */
export function safeEntryName(name: string): string {
  if (name.includes('\0')) throw new ImageError(`refusing archive entry with a NUL byte in its name`, { badInput: true });
  if (name.startsWith('/')) throw new ImageError(`refusing archive entry '${name}': absolute paths are not allowed`, { badInput: true });
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new ImageError(`refusing archive entry '${name}': '..' segments are not allowed`, { badInput: true });
  return parts.join('/');
}

const MAX_LINKS = 40;

/**
 * Resolves the folder part of `rel` inside `root` the way a chroot would: symlinks met
 * on the way are followed, but absolute targets restart at `root` and `..` stops at
 * `root`, so the result is always inside `root`. Missing folders are created when
 * `create` is set. The last segment is returned unresolved, so a symlink there is never
 * followed. Returns the absolute path of the entry to write.
 */
export async function resolveInRoot(root: string, rel: string, create: boolean): Promise<string> {
  const parts = rel.split('/').filter((p) => p !== '' && p !== '.');
  const last = parts.pop();
  if (last === undefined || last === '..') throw new ImageError(`refusing to write the root itself ('${rel}')`, { badInput: true });
  const dir = await resolveDir(root, parts, create, { links: 0 });
  return join(root, ...dir, last);
}

/**
 * Resolves a whole folder path inside `root` (symlinks included, chroot-style) and returns
 * it only when it exists and is a real folder; otherwise undefined. Creates nothing.
 */
export async function existingDirInRoot(root: string, rel: string): Promise<string | undefined> {
  const parts = rel.split('/').filter((p) => p !== '' && p !== '.');
  try {
    const dir = join(root, ...(await resolveDir(root, parts, false, { links: 0 })));
    return (await lstat(dir)).isDirectory() ? dir : undefined;
  } catch {
    return undefined;
  }
}

async function resolveDir(root: string, parts: string[], create: boolean, budget: { links: number }): Promise<string[]> {
  const resolved: string[] = [];
  const queue = [...parts];
  while (queue.length > 0) {
    const part = queue.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const here = join(root, ...resolved, part);
    const info = await lstat(here).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (!info) {
      if (!create) throw new ImageError(`path '${posix.join(...resolved, part)}' does not exist in the image`);
      const made = await mkdir(here).then(
        () => true,
        (error: NodeJS.ErrnoException) => {
          // Made meanwhile by someone else (two instances starting at once): looked at again, as found.
          if (error.code === 'EEXIST') return false;
          throw error;
        },
      );
      if (!made) {
        queue.unshift(part);
        continue;
      }
      await chmod(here, 0o755); // explicit: mkdir's mode is cut by the umask
      resolved.push(part);
      continue;
    }
    if (info.isSymbolicLink()) {
      if (++budget.links > MAX_LINKS) throw new ImageError(`too many levels of symbolic links under '${posix.join(...resolved, part)}'`, { badInput: true });
      const target = await readlink(here);
      if (target.startsWith('/')) resolved.length = 0;
      queue.unshift(...target.split('/'));
      continue;
    }
    if (!info.isDirectory()) throw new ImageError(`path '${posix.join(...resolved, part)}' is not a folder in the image`, { badInput: true });
    resolved.push(part);
  }
  return resolved;
}

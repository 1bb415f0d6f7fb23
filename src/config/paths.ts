import { posix } from 'node:path';

/** True for an absolute POSIX path with no "." or ".." segments ("/app", "/app/"). */
export function isCleanAbsolutePath(path: string): boolean {
  if (!path.startsWith('/') || path.includes('\0')) return false;
  return path.split('/').every((segment) => segment !== '..' && segment !== '.');
}

/**
 * True when a relative path, read as text, stays inside the folder it is relative to
 * ("app/", ".", "a/../b"), false for absolute paths and anything that climbs out ("../x", "a/../../x").
 * Symlinks are the baker's business: this looks only at the text.
 */
export function isPathInside(path: string): boolean {
  if (path === '' || path.startsWith('/') || path.includes('\0')) return false;
  const normalised = posix.normalize(path);
  return normalised !== '..' && !normalised.startsWith('../');
}

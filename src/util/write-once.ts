import { chmodSync, linkSync, unlinkSync, writeFileSync } from 'node:fs';

/**
 * Writes `data` to `path` with `mode` unless the file exists, whole or not at all: a temp file
 * is linked into place, which fails when another writer got there first (their file wins).
 * Returns whether this call wrote it.
 */
export function writeFileOnce(path: string, data: string | Buffer, mode: number): boolean {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode);
  try {
    linkSync(tmp, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return false;
  } finally {
    unlinkSync(tmp);
  }
}

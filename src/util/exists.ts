import { access } from 'node:fs/promises';

/** Whether `path` exists (any kind of file; a dangling symlink does not). */
export async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

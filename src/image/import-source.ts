import { stat } from 'node:fs/promises';
import { ImageError } from '../errors.js';
import { openDirSource } from './dir-source.js';
import type { Staging, StagedFile } from './staging.js';
import { stageTarSource } from './tar-source.js';

/**
 * What an import reads from: the files of an OCI layout or a `docker save` archive, by
 * their names inside it. A name is only ever a key: nothing is written by it.
 */
export interface ImportSource {
  /** What it was opened from, for messages. */
  readonly description: string;
  /** True when the archive holds a file of that name. */
  has(name: string): Promise<boolean>;
  /** The file's content, staged and hashed; throws ImageError when it is missing. */
  get(name: string): Promise<StagedFile>;
}

/** Opens a folder (an OCI layout, or an unpacked docker archive) or a tar file (gzip or not). */
export async function openImportSource(path: string, staging: Staging, onWarning: (message: string) => void): Promise<ImportSource> {
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
    throw new ImageError(`cannot read '${path}': ${error.code === 'ENOENT' ? 'no such file or folder' : error.message}`, { cause: error, badInput: true });
  });
  if (info.isDirectory()) return openDirSource(path, staging);
  if (info.isFile()) return stageTarSource(path, staging, onWarning);
  throw new ImageError(`'${path}' is neither a folder nor a file`, { badInput: true });
}

import { stat } from 'node:fs/promises';
import type { z } from 'zod';
import { ImageError } from '../errors.js';
import { openDirSource } from './dir-source.js';
import type { ImportLimits } from './import-limits.js';
import { MAX_JSON_BYTES, parseJsonAs } from './schemas.js';
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
  /**
   * The file's content, staged and hashed; throws ImageError when it is missing. A source that
   * has yet to copy the file refuses it first when it is known to break `expected`; one that
   * staged it already may return it as it is (`checkBlob` and `Staging.read` check again).
   */
  get(name: string, expected?: Expected): Promise<StagedFile>;
}

/** What a caller knows of a file before it is read. */
export interface Expected {
  /** The size its descriptor gives. */
  size?: number;
  /** The most bytes the caller will read into memory (a JSON document). */
  maxBytes?: number;
}

/** Opens a folder (an OCI layout, or an unpacked docker archive) or a tar file (gzip or not). */
export async function openImportSource(path: string, staging: Staging, onWarning: (message: string) => void, limits: ImportLimits): Promise<ImportSource> {
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
    throw new ImageError(`cannot read '${path}': ${error.code === 'ENOENT' ? 'no such file or folder' : error.message}`, { cause: error, badInput: true });
  });
  if (info.isDirectory()) return openDirSource(path, staging);
  if (info.isFile()) return stageTarSource(path, staging, onWarning, limits);
  throw new ImageError(`'${path}' is neither a folder nor a file`, { badInput: true });
}

/** Reads a JSON document of the archive by name (refused unread when too large) and checks its shape. */
export async function readArchiveJson<T>(source: ImportSource, staging: Staging, name: string, schema: z.ZodType<T>): Promise<T> {
  return parseJsonAs(await staging.read(await source.get(name, { maxBytes: MAX_JSON_BYTES })), schema, name);
}

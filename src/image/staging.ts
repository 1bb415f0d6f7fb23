import { readFile, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { ImageError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import { writeHashed, type BlobStore } from '../store/blob-store.js';
import { MAX_JSON_BYTES } from './schemas.js';

/** A file copied into the store's temp folder and hashed on the way: not yet a blob. */
export interface StagedFile {
  path: string;
  digest: Digest;
  size: number;
}

/**
 * The import's waiting room. Everything an archive holds is first copied to temp files
 * named at random (never by the archive's names), hashed, checked, and only then moved
 * into the blob store under the digest it was measured to have. Whatever is not
 * committed is deleted by `discard`, so a refused import leaves nothing behind.
 */
export class Staging {
  private readonly temps = new Set<string>();

  constructor(private readonly blobs: BlobStore) {}

  /** Copies a stream into a fresh temp file, returning its measured digest and size. */
  async stage(source: Readable | AsyncIterable<Uint8Array>): Promise<StagedFile> {
    const path = this.blobs.tempPath('import');
    this.temps.add(path);
    return { path, ...(await writeHashed(source, path)) };
  }

  /** Stages bytes held in memory (a converted manifest). */
  async stageBuffer(bytes: Buffer): Promise<StagedFile> {
    return this.stage(Readable.from([bytes], { objectMode: false }));
  }

  /** Reads a small staged file (a JSON document) whole; refuses one larger than `limit` bytes. */
  async read(file: StagedFile, limit = MAX_JSON_BYTES): Promise<Buffer> {
    if (file.size > limit) throw new ImageError(`refusing to read ${file.size} bytes as a JSON document (at most ${limit})`, { badInput: true });
    return readFile(file.path);
  }

  /** Moves a checked file into the blob store under its measured digest. */
  async commit(file: StagedFile): Promise<void> {
    if (!this.temps.has(file.path)) {
      if (await this.blobs.has(file.digest)) return; // the same file committed twice (a repeated layer)
    }
    this.temps.delete(file.path);
    await this.blobs.adopt(file.path, file.digest);
  }

  /** Deletes every temp file that was not committed. */
  async discard(): Promise<void> {
    const paths = [...this.temps];
    this.temps.clear();
    await Promise.all(paths.map((path) => rm(path, { force: true })));
  }
}

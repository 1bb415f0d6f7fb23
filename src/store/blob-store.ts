import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable } from 'node:stream';
import { ImageError } from '../errors.js';
import { digestHex, hashDigest, isDigest, sha256, type Digest } from '../oci/digest.js';

/** What a write to the blob store produced. */
export interface BlobInfo {
  digest: Digest;
  size: number;
}

/**
 * A content-addressed blob store laid out as an OCI layout's `blobs/sha256/` folder.
 * Every write goes to a temp file, is hashed while written, and is renamed under its
 * digest only when complete, so no blob ever sits under a name it does not hash to.
 */
export class BlobStore {
  readonly root: string;
  private readonly tmpDir: string;

  constructor(root: string) {
    this.root = root;
    this.tmpDir = join(root, 'tmp');
  }

  /** Creates the folders the store needs. */
  async init(): Promise<void> {
    await mkdir(join(this.root, 'blobs', 'sha256'), { recursive: true });
    await mkdir(this.tmpDir, { recursive: true });
  }

  /** The file path of a blob (whether or not it exists). */
  path(digest: Digest): string {
    if (!isDigest(digest)) throw new ImageError(`invalid digest '${String(digest)}': expected sha256:<64 hex digits>`, { badInput: true });
    return join(this.root, 'blobs', 'sha256', digestHex(digest));
  }

  /** True when the blob is present. */
  async has(digest: Digest): Promise<boolean> {
    try {
      await stat(this.path(digest));
      return true;
    } catch {
      return false;
    }
  }

  /** Size of a present blob, or undefined. */
  async size(digest: Digest): Promise<number | undefined> {
    try {
      return (await stat(this.path(digest))).size;
    } catch {
      return undefined;
    }
  }

  /** A fresh temp path inside the store (same filesystem, so a rename is atomic). */
  tempPath(label = 'blob'): string {
    return join(this.tmpDir, `${label}-${process.pid}-${randomBytes(6).toString('hex')}`);
  }

  /** Writes a buffer; returns its digest. Idempotent. */
  async putBuffer(data: Uint8Array | string): Promise<BlobInfo> {
    const buf = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data);
    const digest = sha256(buf);
    if (await this.has(digest)) return { digest, size: buf.length };
    const tmp = this.tempPath();
    const handle = await open(tmp, 'w', 0o644);
    try {
      await handle.writeFile(buf);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, this.path(digest));
    return { digest, size: buf.length };
  }

  /** Writes a JSON value canonically (no whitespace, keys as given) and returns its digest. */
  async putJson(value: unknown): Promise<BlobInfo & { bytes: Buffer }> {
    const bytes = Buffer.from(JSON.stringify(value));
    return { ...(await this.putBuffer(bytes)), bytes };
  }

  /**
   * Streams data into the store. When `expected` is given, a mismatch (or a short stream)
   * is refused and nothing is stored.
   */
  async putStream(source: Readable | AsyncIterable<Uint8Array>, expected?: { digest: Digest; size?: number }): Promise<BlobInfo> {
    const tmp = this.tempPath();
    try {
      const { digest, size } = await writeHashed(source, tmp);
      if (expected && (digest !== expected.digest || (expected.size !== undefined && expected.size !== size))) {
        throw new ImageError(
          `blob ${expected.digest} is corrupt: expected ${expected.size ?? '?'} bytes hashing to ${expected.digest}, got ${size} bytes hashing to ${digest}`,
        );
      }
      await rename(tmp, this.path(digest));
      return { digest, size };
    } catch (error) {
      await rm(tmp, { force: true });
      throw error;
    }
  }

  /** Moves a finished temp file whose digest the caller computed into the store. */
  async adopt(tmpFile: string, digest: Digest): Promise<void> {
    if (await this.has(digest)) {
      await rm(tmpFile, { force: true });
      return;
    }
    await rename(tmpFile, this.path(digest));
  }

  /** Reads a whole blob. */
  async read(digest: Digest): Promise<Buffer> {
    try {
      return await readFile(this.path(digest));
    } catch (error) {
      throw new ImageError(`failed to read blob '${digest}': ${(error as Error).message}`, { cause: error });
    }
  }

  /** Reads and parses a JSON blob. */
  async readJson<T>(digest: Digest): Promise<T> {
    const bytes = await this.read(digest);
    try {
      return JSON.parse(bytes.toString('utf8')) as T;
    } catch (error) {
      throw new ImageError(`failed to parse blob '${digest}' as JSON: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Opens a blob as a stream. */
  stream(digest: Digest): Readable {
    return createReadStream(this.path(digest));
  }

  /** Lists every stored blob digest. */
  async list(): Promise<Digest[]> {
    const names = await readdir(join(this.root, 'blobs', 'sha256'));
    return names.filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}` as Digest);
  }

  /** Deletes a blob (no error when absent). */
  async delete(digest: Digest): Promise<void> {
    await rm(this.path(digest), { force: true });
  }
}

/**
 * Streams `source` into a new file at `path` (which must not exist), hashing it on the way,
 * and flushes it to disk before returning its digest and size.
 */
export async function writeHashed(source: Readable | AsyncIterable<Uint8Array>, path: string): Promise<BlobInfo> {
  const hash = createHash('sha256');
  let size = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  await pipeline(source, tap, createWriteStream(path, { mode: 0o644, flags: 'wx', flush: true }));
  return { digest: hashDigest(hash), size };
}

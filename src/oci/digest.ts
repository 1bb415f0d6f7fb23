import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** A content digest in OCI form: `sha256:<64 hex>`. */
export type Digest = `sha256:${string}`;

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

/** True when `value` is a well-formed sha256 digest. */
export function isDigest(value: unknown): value is Digest {
  return typeof value === 'string' && DIGEST_RE.test(value);
}

/** The hex part of a digest (the blob's file name in an OCI layout). */
export function digestHex(digest: Digest): string {
  return digest.slice('sha256:'.length);
}

/** sha256 of a buffer or string, as a digest. */
export function sha256(data: string | Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Finishes a running hash as a digest. */
export function hashDigest(hash: Hash): Digest {
  return `sha256:${hash.digest('hex')}`;
}

/** sha256 of a file's content, streamed. */
export async function sha256File(path: string): Promise<Digest> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hashDigest(hash);
}

/** A short form for display: the first 12 hex characters. */
export function shortDigest(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

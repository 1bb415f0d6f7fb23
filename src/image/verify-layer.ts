import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { ImageError, reasonOf } from '../errors.js';
import { hashDigest, type Digest } from '../oci/digest.js';
import { safeEntryName } from '../oci/safe-path.js';

/** A layer to check: a staged file, how it is compressed, and the diff id the config expects. */
export interface LayerCheck {
  /** The layer blob's digest, for messages. */
  digest: Digest;
  path: string;
  gzip: boolean;
  diffId: Digest;
}

/**
 * Reads a layer through a check pass without writing anything: it must decompress, be a
 * well-formed tar, hash (uncompressed) to the config's diff id, and name no entry, and no
 * hard-link target, outside the root (absolute or with `..`).
 */
export async function verifyLayer(layer: LayerCheck): Promise<void> {
  const hash = createHash('sha256');
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  let gzipFailed = false;
  const streams: Readable[] = [createReadStream(layer.path)];
  if (layer.gzip) streams.push(createGunzip().once('error', () => (gzipFailed = true)));
  streams.push(tap);
  const extract = tar.extract();
  const done = pipeline([...streams, extract]);
  done.catch(() => undefined); // observed below, or superseded by the loop's own error
  try {
    for await (const entry of extract) {
      entry.resume();
      checkEntry(layer, entry.header);
    }
    await done;
  } catch (error) {
    for (const stream of streams) stream.destroy();
    if (error instanceof ImageError) throw error;
    const what = gzipFailed ? 'gzip stream' : 'tar archive';
    throw new ImageError(`layer ${layer.digest} is not a valid ${what}: ${reasonOf(error)}`, { cause: error, badInput: true });
  }
  const diffId = hashDigest(hash);
  if (diffId !== layer.diffId) {
    throw new ImageError(`layer ${layer.digest} has diff_id ${diffId}, but the image config expects ${layer.diffId}`, { badInput: true });
  }
}

function checkEntry(layer: LayerCheck, header: tar.Header): void {
  try {
    safeEntryName(header.name);
  } catch (error) {
    throw new ImageError(`layer ${layer.digest}: ${reasonOf(error)}`, { cause: error, badInput: true });
  }
  if (header.type !== 'link') return;
  const target = header.linkname ?? '';
  let inside = false;
  try {
    inside = safeEntryName(target) !== '';
  } catch {
    inside = false;
  }
  if (!inside) {
    throw new ImageError(`layer ${layer.digest}: refusing hard link '${header.name}' to '${target}': the target must be a path inside the image`, { badInput: true });
  }
}

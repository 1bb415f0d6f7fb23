import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { ImageError, reasonOf } from '../errors.js';
import { hashDigest, type Digest } from '../oci/digest.js';
import { safeEntryName } from '../oci/safe-path.js';
import { exceedsGzipRatio, type ImportLimits } from './import-limits.js';

/** A layer to check: a staged file, its size, how it is compressed, and the diff id the config expects. */
export interface LayerCheck {
  /** The layer blob's digest, for messages. */
  digest: Digest;
  path: string;
  /** The blob's size as stored (compressed, for a gzip layer). */
  size: number;
  gzip: boolean;
  diffId: Digest;
}

/** The limits a layer is read under. */
export type LayerLimits = Pick<ImportLimits, 'maxLayerBytes' | 'maxGzipRatio' | 'gzipRatioFloorBytes'>;

/**
 * Reads a layer through a check pass without writing anything: it must decompress, be a
 * well-formed tar, hash (uncompressed) to the config's diff id, and name no entry, and no
 * hard-link target, outside the root (absolute or with `..`). It may hold at most
 * `maxLayerBytes` uncompressed, and a gzip layer may not inflate like a bomb: the pass stops
 * as soon as either is exceeded.
 */
export async function verifyLayer(layer: LayerCheck, limits: LayerLimits): Promise<void> {
  const hash = createHash('sha256');
  let size = 0;
  let refusal: ImageError | undefined;
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      size += chunk.length;
      refusal = tooLarge(layer, size, limits);
      if (refusal) return done(refusal);
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
    if (refusal) throw refusal;
    if (error instanceof ImageError) throw error;
    const what = gzipFailed ? 'gzip stream' : 'tar archive';
    throw new ImageError(`layer ${layer.digest} is not a valid ${what}: ${reasonOf(error)}`, { cause: error, badInput: true });
  }
  const diffId = hashDigest(hash);
  if (diffId !== layer.diffId) {
    throw new ImageError(`layer ${layer.digest} does not match its diff_id: the image config expects ${layer.diffId}`, { badInput: true });
  }
}

/** Why a layer that has inflated to `size` bytes so far is refused, if it is. */
function tooLarge(layer: LayerCheck, size: number, limits: LayerLimits): ImageError | undefined {
  if (size > limits.maxLayerBytes) return new ImageError(`layer ${layer.digest} holds more than ${limits.maxLayerBytes} bytes uncompressed: refusing it`, { badInput: true });
  if (layer.gzip && exceedsGzipRatio(size, layer.size, limits)) {
    return new ImageError(`layer ${layer.digest} inflates to more than ${limits.maxGzipRatio} times its ${layer.size} bytes: refusing it as a likely gzip bomb`, { badInput: true });
  }
  return undefined;
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

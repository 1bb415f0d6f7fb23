import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { posix } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { ImageError, reasonOf } from '../errors.js';
import { safeEntryName } from '../oci/safe-path.js';
import type { ImportSource } from './import-source.js';
import { exceedsGzipRatio, type ImportLimits } from './import-limits.js';
import type { Staging, StagedFile } from './staging.js';

const MAX_ALIAS_HOPS = 16;

/**
 * The names an import can read from an archive: the layout's and docker's documents, blobs,
 * docker's `<hex>.json` configs and `<id>/layer.tar` layers. Any other file is never read, so
 * never staged (links are kept whatever their names: they cost no copy).
 */
const STAGED_NAME = /^(?:index\.json|oci-layout|manifest\.json|blobs\/sha256\/[a-f0-9]{64}|[^/]+\.json|[^/]+\/layer\.tar)$/;

/** The entries of an archive, read once: files staged, links kept as aliases between names. */
interface Contents {
  files: Map<string, StagedFile>;
  /** Regular files no import reads: drained, never written. */
  skipped: Set<string>;
  /** Symlinks and hard links inside the archive: name -> the name they stand for. */
  aliases: Map<string, string>;
  /** Every folder named or implied by an entry. */
  dirs: Set<string>;
}

/** The limits a tar is read under. */
export type TarLimits = Pick<ImportLimits, 'maxEntries' | 'maxStagedBytes' | 'maxGzipRatio' | 'gzipRatioFloorBytes'>;

/**
 * Reads a tar archive (gzip or not) once, staging every regular file an import may read under
 * a random temp name. The whole archive is refused when an entry has an absolute or `..` name,
 * when a link points outside the archive, when an entry lies under a link, when the tar is cut
 * short or corrupt, or past a limit: more than `maxEntries` entries, more than
 * `maxStagedBytes` to stage, or a gzip'd archive that inflates like a bomb. Links inside the
 * archive (docker uses them for repeated layers) are only aliases between names: they are never
 * created, so never followed on disk.
 */
export async function stageTarSource(file: string, staging: Staging, onWarning: (message: string) => void, limits: TarLimits): Promise<ImportSource> {
  const contents: Contents = { files: new Map(), skipped: new Set(), aliases: new Map(), dirs: new Set() };
  let refusal: ImageError | undefined;
  const streams: Readable[] = [createReadStream(file)];
  if (await isGzip(file)) {
    const compressed = (await stat(file)).size;
    let inflated = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        inflated += chunk.length;
        if (!exceedsGzipRatio(inflated, compressed, limits)) return done(null, chunk);
        refusal = new ImageError(`'${file}' inflates to more than ${limits.maxGzipRatio} times its ${compressed} bytes: refusing it as a likely gzip bomb`, { badInput: true });
        done(refusal);
      },
    });
    streams.push(createGunzip(), meter);
  }
  const extract = tar.extract();
  const done = pipeline([...streams, extract]);
  done.catch(() => undefined); // observed below, or superseded by the loop's own error
  let entries = 0;
  let stagedBytes = 0;
  const stage = async (name: string, size: number, body: Readable): Promise<StagedFile> => {
    stagedBytes += size;
    if (stagedBytes > limits.maxStagedBytes) {
      throw new ImageError(`'${file}' holds more than ${limits.maxStagedBytes} bytes to read (at '${name}'): refusing it`, { badInput: true });
    }
    return staging.stage(body);
  };
  try {
    for await (const entry of extract) {
      try {
        if (++entries > limits.maxEntries) throw new ImageError(`'${file}' has more than ${limits.maxEntries} entries: refusing it`, { badInput: true });
        await addEntry(contents, entry.header, entry as unknown as Readable, stage, onWarning);
      } finally {
        entry.resume();
      }
    }
    await done;
  } catch (error) {
    for (const stream of streams) stream.destroy();
    if (refusal) throw refusal;
    if (error instanceof ImageError) throw error;
    throw new ImageError(`'${file}' is not a readable tar archive: ${reasonOf(error)}`, { cause: error, badInput: true });
  }
  return sourceOf(file, contents);
}

async function addEntry(
  contents: Contents,
  header: tar.Header,
  body: Readable,
  stage: (name: string, size: number, body: Readable) => Promise<StagedFile>,
  onWarning: (message: string) => void,
): Promise<void> {
  const name = safeEntryName(header.name);
  if (name === '') return;
  const parts = name.split('/');
  for (let i = 1; i < parts.length; i++) {
    const parent = parts.slice(0, i).join('/');
    if (contents.aliases.has(parent)) throw new ImageError(`refusing archive entry '${header.name}': it lies under the link '${parent}'`, { badInput: true });
    if (contents.files.has(parent) || contents.skipped.has(parent)) throw new ImageError(`refusing archive entry '${header.name}': '${parent}' is a file`, { badInput: true });
    contents.dirs.add(parent);
  }
  const taken = contents.files.has(name) || contents.skipped.has(name) || contents.aliases.has(name);
  if (taken || (header.type !== 'directory' && contents.dirs.has(name))) {
    throw new ImageError(`refusing archive entry '${header.name}': the archive has two entries of that name`, { badInput: true });
  }
  switch (header.type) {
    case 'directory':
      contents.dirs.add(name);
      return;
    case 'file':
    case 'contiguous-file':
      if (STAGED_NAME.test(name)) contents.files.set(name, await stage(name, header.size ?? 0, body));
      else contents.skipped.add(name); // drained by the caller, never written
      return;
    case 'symlink':
      contents.aliases.set(name, symlinkTarget(header.name, name, header.linkname ?? ''));
      return;
    case 'link': {
      const target = safeEntryName(header.linkname ?? '');
      if (target === '') throw new ImageError(`refusing hard link '${header.name}' with an empty target`, { badInput: true });
      contents.aliases.set(name, target);
      return;
    }
    default:
      onWarning(`ignored archive entry '${name}': ${String(header.type)} entries have no place in an image archive`);
  }
}

/** Where a symlink entry points, as an archive name; refuses targets outside the archive. */
function symlinkTarget(raw: string, name: string, target: string): string {
  if (target === '' || target.startsWith('/')) {
    throw new ImageError(`refusing archive entry '${raw}': a symlink to '${target}' points outside the archive`, { badInput: true });
  }
  const joined = posix.normalize(posix.join(posix.dirname(name), target));
  if (joined === '..' || joined.startsWith('../') || joined === '.') {
    throw new ImageError(`refusing archive entry '${raw}': a symlink to '${target}' points outside the archive`, { badInput: true });
  }
  return joined;
}

function sourceOf(file: string, contents: Contents): ImportSource {
  /** The file a name stands for, following aliases: staged, skipped (by its name), or missing. */
  const resolve = (name: string): StagedFile | { skipped: string } | undefined => {
    let key = safeEntryName(name);
    for (let hops = 0; hops <= MAX_ALIAS_HOPS; hops++) {
      const staged = contents.files.get(key);
      if (staged) return staged;
      if (contents.skipped.has(key)) return { skipped: key };
      const next = contents.aliases.get(key);
      if (next === undefined) return undefined;
      key = next;
    }
    throw new ImageError(`too many links in a row at '${name}' in '${file}'`, { badInput: true });
  };
  return {
    description: file,
    has: async (name) => resolve(name) !== undefined,
    async get(name) {
      const found = resolve(name);
      if (!found) throw new ImageError(`'${name}' is missing from '${file}'`, { badInput: true });
      if ('skipped' in found) {
        throw new ImageError(
          `refusing '${name}' in '${file}': imago reads only index.json, oci-layout, manifest.json, blobs/sha256/<hex>, <name>.json and <id>/layer.tar from an archive, not '${found.skipped}'`,
          { badInput: true },
        );
      }
      return found;
    },
  };
}

async function isGzip(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const { bytesRead, buffer } = await handle.read(Buffer.alloc(2), 0, 2, 0);
    return bytesRead === 2 && buffer[0] === 0x1f && buffer[1] === 0x8b;
  } finally {
    await handle.close();
  }
}

import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { ImageError, reasonOf } from '../errors.js';
import { safeEntryName } from '../oci/safe-path.js';
import type { ImportSource } from './import-source.js';
import type { Staging, StagedFile } from './staging.js';

const MAX_ALIAS_HOPS = 16;

/** The entries of an archive, read once: files staged, links kept as aliases between names. */
interface Contents {
  files: Map<string, StagedFile>;
  /** Symlinks and hard links inside the archive: name -> the name they stand for. */
  aliases: Map<string, string>;
  /** Every folder named or implied by an entry. */
  dirs: Set<string>;
}

/**
 * Reads a tar archive (gzip or not) once, staging every regular file under a random temp
 * name. The whole archive is refused when an entry has an absolute or `..` name, when a link
 * points outside the archive, when an entry lies under a link, or when the tar is cut short
 * or corrupt. Links inside the archive (docker uses them for repeated layers) are only
 * aliases between names: they are never created, so never followed on disk.
 */
export async function stageTarSource(file: string, staging: Staging, onWarning: (message: string) => void): Promise<ImportSource> {
  const contents: Contents = { files: new Map(), aliases: new Map(), dirs: new Set() };
  const layers: Readable[] = [createReadStream(file)];
  if (await isGzip(file)) layers.push(createGunzip());
  const extract = tar.extract();
  const done = pipeline([...layers, extract]);
  done.catch(() => undefined); // observed below, or superseded by the loop's own error
  try {
    for await (const entry of extract) {
      try {
        await addEntry(contents, entry.header, entry as unknown as Readable, staging, onWarning);
      } finally {
        entry.resume();
      }
    }
    await done;
  } catch (error) {
    for (const stream of layers) stream.destroy();
    if (error instanceof ImageError) throw error;
    throw new ImageError(`'${file}' is not a readable tar archive: ${reasonOf(error)}`, { cause: error, badInput: true });
  }
  return sourceOf(file, contents);
}

async function addEntry(contents: Contents, header: tar.Header, body: Readable, staging: Staging, onWarning: (message: string) => void): Promise<void> {
  const name = safeEntryName(header.name);
  if (name === '') return;
  const parts = name.split('/');
  for (let i = 1; i < parts.length; i++) {
    const parent = parts.slice(0, i).join('/');
    if (contents.aliases.has(parent)) throw new ImageError(`refusing archive entry '${header.name}': it lies under the link '${parent}'`, { badInput: true });
    if (contents.files.has(parent)) throw new ImageError(`refusing archive entry '${header.name}': '${parent}' is a file`, { badInput: true });
    contents.dirs.add(parent);
  }
  if (header.type !== 'directory' && (contents.files.has(name) || contents.aliases.has(name) || contents.dirs.has(name))) {
    throw new ImageError(`refusing archive entry '${header.name}': the archive has two entries of that name`, { badInput: true });
  }
  switch (header.type) {
    case 'directory':
      if (contents.files.has(name) || contents.aliases.has(name)) throw new ImageError(`refusing archive entry '${header.name}': the archive has two entries of that name`, { badInput: true });
      contents.dirs.add(name);
      return;
    case 'file':
    case 'contiguous-file':
      contents.files.set(name, await staging.stage(body));
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
  const resolve = (name: string): StagedFile | undefined => {
    let key = safeEntryName(name);
    for (let hops = 0; hops <= MAX_ALIAS_HOPS; hops++) {
      const staged = contents.files.get(key);
      if (staged) return staged;
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
      const staged = resolve(name);
      if (!staged) throw new ImageError(`'${name}' is missing from '${file}'`, { badInput: true });
      return staged;
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

import { constants } from 'node:fs';
import { chmod, lchown, link, lstat, mkdir, open, readdir, rm, symlink, utimes } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { ImageError } from '../errors.js';
import { resolveInRoot, safeEntryName } from './safe-path.js';

/** Options for unpacking layers. */
export interface UnpackOptions {
  /** Told about entries that were skipped (device nodes, fifos). */
  onWarning?: (message: string) => void;
  /** Apply owners from the archive (default: only when running as root). */
  chown?: boolean;
}

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

/** Wraps a layer stream with gunzip when it starts with the gzip magic bytes. */
export async function maybeGunzip(stream: Readable): Promise<Readable> {
  const first = await new Promise<Buffer | null>((resolve, reject) => {
    const onReadable = () => {
      cleanup();
      resolve(stream.read(2) as Buffer | null ?? (stream.read() as Buffer | null));
    };
    const onEnd = () => {
      cleanup();
      resolve(null);
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const cleanup = () => {
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('error', onError);
    };
    stream.on('readable', onReadable);
    stream.on('end', onEnd);
    stream.on('error', onError);
  });
  if (first) stream.unshift(first);
  if (first && first[0] === 0x1f && first[1] === 0x8b) return stream.pipe(createGunzip());
  return stream;
}

/**
 * Applies one layer (a tar stream, gzip or not) onto `root`, with OCI whiteout semantics.
 * Safe against hostile archives: absolute and `..` names are refused, symlinks are created
 * as symlinks and never followed while writing (parents resolve inside `root`), hard links
 * must point inside `root`, and device nodes and fifos are skipped with a warning.
 */
export async function applyLayer(root: string, layer: Readable, options: UnpackOptions = {}): Promise<void> {
  const chown = options.chown ?? process.getuid?.() === 0;
  const extract = tar.extract();
  const source = await maybeGunzip(layer);
  const done = pipeline(source, extract).catch((error: unknown) => {
    throw new ImageError(`failed to read layer: ${(error as Error).message}`, { cause: error });
  });
  // Observed now: when an entry is refused the loop below throws first, and `done` then rejects too.
  done.catch(() => undefined);
  const dirModes: Array<[string, number]> = [];
  for await (const entry of extract) {
    const header = entry.header;
    try {
      await applyEntry(root, header, entry as unknown as Readable, { chown, warn: options.onWarning ?? (() => undefined), dirModes });
    } finally {
      entry.resume();
    }
  }
  await done;
  // Folder modes last, so a read-only folder does not stop its own children being written.
  // Resolved again: a later entry may have replaced the folder (or a parent) with a symlink.
  for (const [rel, mode] of dirModes.reverse()) {
    const path = await resolveInRoot(root, rel, false).catch(() => undefined);
    const info = path ? await lstat(path).catch(() => undefined) : undefined;
    if (path && info?.isDirectory()) await chmod(path, mode).catch(() => undefined);
  }
}

interface Ctx {
  chown: boolean;
  warn: (message: string) => void;
  dirModes: Array<[string, number]>;
}

async function applyEntry(root: string, header: tar.Header, body: Readable, ctx: Ctx): Promise<void> {
  const rel = safeEntryName(header.name);
  if (rel === '') return;
  const name = basename(rel);
  if (name === OPAQUE) {
    const dir = dirname(rel) === '.' ? root : await resolveInRoot(root, dirname(rel), true);
    for (const child of await readdir(dir).catch(() => [] as string[])) await rm(join(dir, child), { recursive: true, force: true });
    return;
  }
  if (name.startsWith(WHITEOUT)) {
    const target = join(dirname(rel), name.slice(WHITEOUT.length));
    const path = await resolveInRoot(root, target, true);
    await rm(path, { recursive: true, force: true });
    return;
  }
  const path = await resolveInRoot(root, rel, true);
  const mode = (header.mode ?? 0o644) & 0o7777;
  switch (header.type) {
    case 'directory': {
      const existing = await lstat(path).catch(() => undefined);
      if (existing && !existing.isDirectory()) await rm(path, { recursive: true, force: true });
      if (!existing || !existing.isDirectory()) await mkdir(path, { mode: 0o755 });
      if (ctx.chown) await lchown(path, header.uid ?? 0, header.gid ?? 0);
      ctx.dirModes.push([rel, mode]);
      return;
    }
    case 'file':
    case 'contiguous-file': {
      await removeExisting(path);
      const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      await pipeline(body, handle.createWriteStream());
      if (ctx.chown) await lchown(path, header.uid ?? 0, header.gid ?? 0);
      await chmod(path, mode);
      if (header.mtime) await utimes(path, header.mtime, header.mtime);
      return;
    }
    case 'symlink': {
      await removeExisting(path);
      await symlink(header.linkname ?? '', path);
      if (ctx.chown) await lchown(path, header.uid ?? 0, header.gid ?? 0);
      return;
    }
    case 'link': {
      const targetRel = safeEntryName(header.linkname ?? '');
      if (targetRel === '') throw new ImageError(`refusing hard link '${rel}' with an empty target`, { badInput: true });
      const target = await resolveInRoot(root, targetRel, false);
      const info = await lstat(target).catch(() => undefined);
      if (!info || info.isDirectory()) throw new ImageError(`refusing hard link '${rel}': target '${targetRel}' is not a file in the image`, { badInput: true });
      await removeExisting(path);
      await link(target, path);
      return;
    }
    case 'character-device':
    case 'block-device':
    case 'fifo':
      ctx.warn(`skipped ${header.type} '${rel}': device nodes and fifos are not unpacked`);
      return;
    default:
      ctx.warn(`skipped '${rel}': unsupported entry type ${String(header.type)}`);
  }
}

async function removeExisting(path: string): Promise<void> {
  const existing = await lstat(path).catch(() => undefined);
  if (existing) await rm(path, { recursive: existing.isDirectory(), force: true });
}

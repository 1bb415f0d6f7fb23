import { constants } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, open, readdir, rm, symlink, utimes } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { ImageError } from '../errors.js';
import { existingDirInRoot, resolveInRoot, safeEntryName } from './safe-path.js';

/** Options for unpacking layers. */
export interface UnpackOptions {
  /** Told about entries that were skipped (device nodes, fifos). */
  onWarning?: (message: string) => void;
  /** Apply owners from the archive (default: only when running as root). */
  chown?: boolean;
  /**
   * Filled with each entry's owner from the archive (path → uid/gid), for callers that
   * cannot chown (not root) but must remember who owns what.
   */
  owners?: Map<string, { uid: number; gid: number }>;
}

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

/** Wraps a layer stream with gunzip when it starts with the gzip magic bytes. */
export async function maybeGunzip(stream: Readable): Promise<Readable> {
  const iterator = (stream as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let headBytes = 0;
  let ended = false;
  while (headBytes < 2) {
    const next = await iterator.next();
    if (next.done) {
      ended = true;
      break;
    }
    const chunk = Buffer.from(next.value);
    head.push(chunk);
    headBytes += chunk.length;
  }
  async function* replay(): AsyncGenerator<Buffer> {
    yield* head;
    if (ended) return;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield Buffer.from(next.value);
  }
  const joined = Readable.from(replay(), { objectMode: false });
  const first = Buffer.concat(head);
  if (first[0] !== 0x1f || first[1] !== 0x8b) return joined;
  const gunzip = createGunzip();
  joined.on('error', (error) => gunzip.destroy(error));
  return joined.pipe(gunzip);
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
  const ctx: Ctx = { chown, warn: options.onWarning ?? (() => undefined), dirs: [], written: new Set(), owners: options.owners };
  for await (const entry of extract) {
    const header = entry.header;
    try {
      await applyEntry(root, header, entry as unknown as Readable, ctx);
    } finally {
      entry.resume();
    }
  }
  await done;
  // Folder modes and times last, so a read-only folder does not stop its own children being
  // written and children do not touch the time. Resolved again: a later entry may have
  // replaced the folder (or a parent) with a symlink.
  for (const { rel, mode, mtime } of ctx.dirs.reverse()) {
    const path = await existingDirInRoot(root, rel);
    if (!path) continue;
    await chmod(path, mode).catch(() => undefined);
    await utimes(path, mtime, mtime).catch(() => undefined);
  }
}

interface Ctx {
  chown: boolean;
  warn: (message: string) => void;
  dirs: Array<{ rel: string; mode: number; mtime: Date }>;
  /** Paths this layer wrote: an opaque whiteout keeps them. */
  written: Set<string>;
  owners: Map<string, { uid: number; gid: number }> | undefined;
}

async function applyEntry(root: string, header: tar.Header, body: Readable, ctx: Ctx): Promise<void> {
  const rel = safeEntryName(header.name);
  if (rel === '') return;
  const name = basename(rel);
  const parent = dirname(rel) === '.' ? '' : dirname(rel);
  if (name === OPAQUE) {
    // Only a real folder inside the root is emptied, and only of what lower layers put there.
    const dir = parent === '' ? root : await existingDirInRoot(root, parent);
    if (!dir) return;
    for (const child of await readdir(dir)) {
      const childRel = parent === '' ? child : `${parent}/${child}`;
      if (ctx.written.has(childRel)) continue;
      await rm(join(dir, child), { recursive: true, force: true });
      forgetOwners(ctx, childRel);
    }
    return;
  }
  if (name.startsWith(WHITEOUT)) {
    const dir = parent === '' ? root : await existingDirInRoot(root, parent);
    if (!dir) return; // nothing below a missing folder to delete
    const target = name.slice(WHITEOUT.length);
    if (target === '' || target === '.' || target === '..') throw new ImageError(`refusing whiteout '${rel}': it names no entry`, { badInput: true });
    await rm(join(dir, target), { recursive: true, force: true }); // removes a symlink itself, never its target
    forgetOwners(ctx, parent === '' ? target : `${parent}/${target}`);
    return;
  }
  const path = await resolveInRoot(root, rel, true);
  ctx.written.add(rel);
  ctx.owners?.set(rel, { uid: header.uid ?? 0, gid: header.gid ?? 0 });
  const mode = (header.mode ?? 0o644) & 0o7777;
  switch (header.type) {
    case 'directory': {
      const existing = await lstat(path).catch(() => undefined);
      if (existing && !existing.isDirectory()) await rm(path, { recursive: true, force: true });
      if (!existing || !existing.isDirectory()) await mkdir(path, { mode: 0o755 });
      if (ctx.chown) await lchown(path, header.uid ?? 0, header.gid ?? 0);
      ctx.dirs.push({ rel, mode, mtime: header.mtime ?? new Date(0) });
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
      if (header.mtime) await lutimes(path, header.mtime, header.mtime);
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

function forgetOwners(ctx: Ctx, rel: string): void {
  if (!ctx.owners) return;
  for (const key of ctx.owners.keys()) if (key === rel || key.startsWith(`${rel}/`)) ctx.owners.delete(key);
}

async function removeExisting(path: string): Promise<void> {
  const existing = await lstat(path).catch(() => undefined);
  if (existing) await rm(path, { recursive: existing.isDirectory(), force: true });
}

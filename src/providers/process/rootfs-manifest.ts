import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, readdirSync, readFileSync, readlinkSync, type Stats } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import type { Digest } from '../../oci/digest.js';
import { safeEntryName } from '../../oci/safe-path.js';
import { maybeGunzip } from '../../oci/unpack.js';
import type { ImageStore } from '../../store/image-store.js';

/** One path of an image's root filesystem, as its layers make it. */
export interface ManifestEntry {
  type: 'file' | 'dir' | 'symlink';
  /** Permission bits (& 0o7777). */
  mode: number;
  /** Files: size and sha256 (hex) of the content. */
  size?: number;
  sha256?: string;
  /** Symlinks: the target. */
  link?: string;
  /** A folder no layer names, made because something inside it is: its mode is the unpacker's, not checked. */
  implicit?: boolean;
}

/** An image's root filesystem: relative path (no leading slash) → entry. */
export type RootfsManifest = Map<string, ManifestEntry>;

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

/**
 * The root filesystem an image's layers make, path by path: every layer in order, whiteouts
 * and opaque folders applied, files hashed as they stream by, hard links resolved to their
 * target's content. What an unpacked root is checked against: "the image's layers", not an
 * earlier look at the folder.
 */
export async function layerManifest(store: ImageStore, digest: Digest): Promise<RootfsManifest> {
  const out: RootfsManifest = new Map();
  const manifest = await store.manifest(digest);
  for (const layer of manifest.layers) {
    const written = new Set<string>();
    const extract = tar.extract();
    const source = await maybeGunzip(store.blobs.stream(layer.digest));
    const done = pipeline(source, extract);
    done.catch(() => undefined);
    for await (const entry of extract) {
      const header = entry.header;
      const named = safeEntryName(header.name);
      const name = named.split('/').at(-1) ?? '';
      // The unpacker follows symlinked folders of earlier layers (lib -> usr/lib): so does the manifest.
      const parent = resolveFolder(out, named.includes('/') ? named.slice(0, named.lastIndexOf('/')) : '');
      const rel = parent === '' ? name : `${parent}/${name}`;
      if (named === '') {
        entry.resume();
        continue;
      }
      if (name === OPAQUE) {
        for (const key of [...out.keys()]) if (key.startsWith(parent === '' ? '' : `${parent}/`) && key !== parent && !written.has(key)) out.delete(key);
      } else if (name.startsWith(WHITEOUT)) {
        removeTree(out, parent === '' ? name.slice(WHITEOUT.length) : `${parent}/${name.slice(WHITEOUT.length)}`);
      } else {
        const mode = (header.mode ?? 0o644) & 0o7777;
        written.add(rel);
        addParents(out, parent);
        if (header.type === 'directory') {
          if (out.get(rel)?.type !== 'dir') removeTree(out, rel);
          out.set(rel, { type: 'dir', mode });
        } else if (header.type === 'file' || header.type === 'contiguous-file') {
          removeTree(out, rel);
          const hash = createHash('sha256');
          let size = 0;
          for await (const chunk of entry as AsyncIterable<Buffer>) {
            hash.update(chunk);
            size += chunk.length;
          }
          out.set(rel, { type: 'file', mode, size, sha256: hash.digest('hex') });
        } else if (header.type === 'symlink') {
          removeTree(out, rel);
          out.set(rel, { type: 'symlink', mode: 0o777, link: header.linkname ?? '' });
        } else if (header.type === 'link') {
          const target = out.get(safeEntryName(header.linkname ?? ''));
          if (target?.type === 'file') {
            removeTree(out, rel);
            out.set(rel, { ...target });
          }
        }
      }
      entry.resume();
    }
    await done;
  }
  return out;
}

/** A folder path with the symlinks of the manifest on the way resolved (as a chroot would: absolute targets from the root). */
function resolveFolder(manifest: RootfsManifest, path: string): string {
  let parts = path === '' ? [] : path.split('/');
  for (let hops = 0; hops < 40; hops++) {
    let changed = false;
    for (let i = 1; i <= parts.length; i++) {
      const entry = manifest.get(parts.slice(0, i).join('/'));
      if (entry?.type !== 'symlink' || entry.link === undefined) continue;
      const base = entry.link.startsWith('/') ? [] : parts.slice(0, i - 1);
      const resolved: string[] = [];
      for (const part of [...base, ...entry.link.split('/'), ...parts.slice(i)]) {
        if (part === '' || part === '.') continue;
        if (part === '..') resolved.pop();
        else resolved.push(part);
      }
      parts = resolved;
      changed = true;
      break;
    }
    if (!changed) break;
  }
  return parts.join('/');
}

/** Folders above an entry that no layer named: unpacking makes them. */
function addParents(manifest: RootfsManifest, parent: string): void {
  const parts = parent === '' ? [] : parent.split('/');
  for (let i = 1; i <= parts.length; i++) {
    const dir = parts.slice(0, i).join('/');
    if (!manifest.has(dir)) manifest.set(dir, { type: 'dir', mode: 0o755, implicit: true });
  }
}

function removeTree(manifest: RootfsManifest, rel: string): void {
  manifest.delete(rel);
  for (const key of [...manifest.keys()]) if (key.startsWith(`${rel}/`)) manifest.delete(key);
}

/** What one pass over a root found, and how much it read. */
export interface RootfsCheck {
  /** One line each: `/usr/bin/node: content differs from the image`, `/etc/evil: added` … */
  findings: string[];
  files: number;
  bytes: number;
}

/** A file's change-time and size, as a stat pass compares it against the last full pass. */
export type StatBaseline = Map<string, { ctimeMs: number; size: number; ino: number }>;

/**
 * Checks an unpacked root against its manifest. `rehash`: every file is read and hashed (a
 * full pass, which also fills `baseline`); otherwise a stat pass: every path's type, mode and
 * size, and for files their change time against `baseline` (a write, a chmod or a replace
 * moves it, and no one can set it back). Either way the tree is walked for paths the image
 * does not have; a folder of nothing but folders is allowed (mount points: /proc, /dev, /tmp, volumes).
 */
export async function checkRootfs(root: string, manifest: RootfsManifest, options: { rehash: boolean; baseline: StatBaseline }): Promise<RootfsCheck> {
  const findings: string[] = [];
  let files = 0;
  let bytes = 0;
  const seen = new Set<string>();
  const slice = new Slice();
  // Synchronous calls, in slices that yield to the event loop: a stat or a small read on the
  // thread pool costs more than the work itself (bench/drift.ts), and the loop must keep running.
  const walk = async (rel: string): Promise<void> => {
    let names: string[];
    try {
      names = readdirSync(rel === '' ? root : join(root, rel)).sort();
    } catch {
      return;
    }
    for (const name of names) {
      await slice.tick();
      const path = rel === '' ? name : `${rel}/${name}`;
      let info: Stats;
      try {
        info = lstatSync(join(root, path));
      } catch {
        continue;
      }
      seen.add(path);
      const expected = manifest.get(path);
      if (!expected) {
        if (info.isDirectory() && (await onlyFolders(join(root, path)))) continue;
        findings.push(`/${path}: added (not in the image)`);
        continue;
      }
      const problem = await compare(root, path, info, expected, options);
      if (problem) findings.push(`/${path}: ${problem}`);
      if (expected.type === 'file') {
        files++;
        if (options.rehash) {
          bytes += info.size;
          slice.spent(info.size);
        }
      }
      if (info.isDirectory() && expected.type === 'dir') await walk(path);
    }
  };
  await walk('');
  for (const path of manifest.keys()) if (!seen.has(path)) findings.push(`/${path}: removed (the image has it)`);
  return { findings, files, bytes };
}

/** Yields to the event loop every few milliseconds of synchronous work (or every 8 MB read). */
class Slice {
  private started = performance.now();
  private read = 0;

  spent(bytes: number): void {
    this.read += bytes;
  }

  async tick(): Promise<void> {
    if (performance.now() - this.started < 5 && this.read < 8 * 1024 * 1024) return;
    await new Promise((resolve) => setImmediate(resolve));
    this.started = performance.now();
    this.read = 0;
  }
}

async function compare(root: string, path: string, info: Stats, expected: ManifestEntry, options: { rehash: boolean; baseline: StatBaseline }): Promise<string | undefined> {
  const type = info.isDirectory() ? 'dir' : info.isSymbolicLink() ? 'symlink' : info.isFile() ? 'file' : 'other';
  if (type !== expected.type) return `is a ${type}, the image has a ${expected.type}`;
  if (expected.type === 'symlink') {
    let link = '';
    try {
      link = readlinkSync(join(root, path));
    } catch {
      // unreadable: reported as a different target
    }
    return link === expected.link ? undefined : `links to ${link}, the image to ${expected.link}`;
  }
  if (!expected.implicit && (info.mode & 0o7777) !== expected.mode) return `mode ${(info.mode & 0o7777).toString(8)}, the image has ${expected.mode.toString(8)}`;
  if (expected.type !== 'file') return undefined;
  if (info.size !== expected.size) return `size ${info.size}, the image has ${expected.size}`;
  if (options.rehash) {
    const sha256 = await hashFile(join(root, path), info.size);
    if (sha256 !== expected.sha256) return 'content differs from the image';
    options.baseline.set(path, { ctimeMs: info.ctimeMs, size: info.size, ino: info.ino });
    return undefined;
  }
  const base = options.baseline.get(path);
  if (base && (base.ctimeMs !== info.ctimeMs || base.ino !== info.ino)) return 'changed since it was last verified (its change time moved)';
  return undefined;
}

/** True for a folder holding nothing but (empty) folders: mount points imago made. */
async function onlyFolders(dir: string): Promise<boolean> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => undefined);
  if (!entries) return false;
  for (const entry of entries) if (!entry.isDirectory() || !(await onlyFolders(join(dir, entry.name)))) return false;
  return true;
}

/** Files up to this size are read in one synchronous call; larger ones are streamed. */
const SMALL_FILE = 1024 * 1024;

/** sha256 (hex) of a file's content. */
export async function hashFile(path: string, size: number): Promise<string> {
  if (size <= SMALL_FILE) return createHash('sha256').update(readFileSync(path)).digest('hex');
  const hash = createHash('sha256');
  await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }) as Readable, async function* (source: AsyncIterable<Buffer>) {
    for await (const chunk of source) hash.update(chunk);
  });
  return hash.digest('hex');
}

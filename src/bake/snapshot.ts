import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { LayerEntry } from '../oci/layer-writer.js';

/** What a snapshot remembers of one path. */
export interface NodeInfo {
  type: 'file' | 'directory' | 'symlink' | 'other';
  mode: number;
  uid: number;
  gid: number;
  size: number;
  ino: bigint;
  nlink: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  target?: string;
}

/** A root filesystem's paths (relative, `usr/bin/node`) and their metadata. */
export type Snapshot = Map<string, NodeInfo>;

/** Top-level folders the sandbox mounts over; what happens in them is never part of a layer. */
export const MOUNT_POINTS = ['dev', 'proc', 'tmp'];

/** Owners the layers gave to paths that could not be chowned on disk (baking without root). */
export type OwnerMap = Map<string, { uid: number; gid: number }>;

/**
 * Walks a root filesystem and records every path's metadata (mount points excluded).
 * Without root, every file on disk is the caller's: a path's owner is then the one its
 * layer gave it (from `owners`), and a path the sandbox created is root's, as it was
 * inside the sandbox and as a root bake of the same step records it.
 */
export async function snapshotTree(root: string, owners?: OwnerMap): Promise<Snapshot> {
  const snap: Snapshot = new Map();
  const me = process.getuid?.() ?? 0;
  const myGroup = process.getgid?.() ?? 0;
  const walk = async (abs: string, rel: string) => {
    for (const name of await readdir(abs)) {
      const childRel = rel ? `${rel}/${name}` : name;
      if (!rel && MOUNT_POINTS.includes(name)) continue;
      const childAbs = join(abs, name);
      const st = await lstat(childAbs, { bigint: true });
      const type = st.isFile() ? 'file' : st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : 'other';
      const layerOwner = me !== 0 ? owners?.get(childRel) : undefined;
      const info: NodeInfo = {
        type,
        mode: Number(st.mode & 0o7777n),
        uid: me !== 0 && Number(st.uid) === me ? (layerOwner?.uid ?? 0) : Number(st.uid),
        gid: me !== 0 && Number(st.gid) === myGroup ? (layerOwner?.gid ?? 0) : Number(st.gid),
        size: Number(st.size),
        ino: st.ino,
        nlink: Number(st.nlink),
        mtimeNs: st.mtimeNs,
        ctimeNs: st.ctimeNs,
      };
      if (type === 'symlink') info.target = await readlink(childAbs);
      snap.set(childRel, info);
      if (type === 'directory') await walk(childAbs, childRel);
    }
  };
  await walk(root, '');
  return snap;
}

function same(a: NodeInfo, b: NodeInfo): boolean {
  if (a.type !== b.type || a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid) return false;
  if (a.type === 'directory') return true;
  return a.size === b.size && a.ino === b.ino && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.target === b.target;
}

/**
 * The layer entries that turn `before` into `after` (both snapshots of `root`): new and
 * changed paths with their folders' current metadata, hard links kept as links, and a
 * whiteout for each deleted path whose parent still exists. Pure apart from naming files.
 */
export function diffSnapshots(root: string, before: Snapshot, after: Snapshot, onSkip?: (path: string) => void): LayerEntry[] {
  const changed = new Set<string>();
  for (const [path, info] of after) {
    const old = before.get(path);
    if (!old || !same(old, info)) changed.add(path);
  }
  // Parents of changed paths go in too, with their real metadata, so a layer never resets a folder's mode.
  for (const path of [...changed]) {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) changed.add(parts.slice(0, i).join('/'));
  }
  const entries: LayerEntry[] = [];
  const firstByInode = new Map<bigint, string>();
  for (const path of [...changed].sort()) {
    const info = after.get(path)!;
    const owner = { uid: info.uid, gid: info.gid };
    switch (info.type) {
      case 'directory':
        entries.push({ type: 'directory', path, mode: info.mode, ...owner });
        break;
      case 'symlink':
        entries.push({ type: 'symlink', path, target: info.target ?? '', ...owner });
        break;
      case 'file': {
        const first = info.nlink > 1 ? firstByInode.get(info.ino) : undefined;
        if (first) {
          entries.push({ type: 'hardlink', path, target: first, ...owner });
        } else {
          if (info.nlink > 1) firstByInode.set(info.ino, path);
          entries.push({ type: 'file', path, mode: info.mode, ...owner, size: info.size, source: { file: join(root, path) } });
        }
        break;
      }
      default:
        // A fifo, socket or device cannot be baked; whatever was there before must not survive.
        onSkip?.(path);
        if (before.has(path) && before.get(path)!.type !== 'other') entries.push({ type: 'whiteout', path });
    }
  }
  for (const path of [...before.keys()].sort()) {
    if (after.has(path)) continue;
    const slash = path.lastIndexOf('/');
    const parent = slash < 0 ? '' : path.slice(0, slash);
    // Below a folder that is gone, or is now a file or symlink, the parent's own entry says it all.
    if (parent !== '' && after.get(parent)?.type !== 'directory') continue;
    entries.push({ type: 'whiteout', path });
  }
  return entries;
}

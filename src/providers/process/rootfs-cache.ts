import { chmod, mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { unpackImage } from '../../image/unpack-image.js';
import { digestHex, type Digest } from '../../oci/digest.js';
import { existingDirInRoot, resolveInRoot } from '../../oci/safe-path.js';
import type { ImageStore } from '../../store/image-store.js';
import { removeTree } from '../../store/remove-tree.js';
import { exists } from '../../util/exists.js';

/** Folders the sandbox mounts over. */
const MOUNT_POINTS = ['proc', 'dev', 'tmp'];

/**
 * Unpacked root filesystems, one per image digest, shared read-only by every instance of
 * that image: `<dir>/<hex>`. An image is unpacked into a temp folder and renamed when whole,
 * so a half-unpacked root is never used.
 */
export class RootfsCache {
  constructor(
    private readonly store: ImageStore,
    private readonly dir: string,
  ) {}

  /** The root of `digest`, unpacking it first when needed. */
  async ensure(digest: Digest): Promise<string> {
    const root = this.path(digest);
    if (await exists(root)) return root;
    await mkdir(this.dir, { recursive: true });
    const tmp = this.store.blobs.tempPath('unpack');
    try {
      await unpackImage(this.store, digest, tmp);
      // The sandbox mounts /proc, /dev and /tmp over a read-only root: their mount points must exist.
      for (const dir of MOUNT_POINTS) {
        if (!(await existingDirInRoot(tmp, dir))) {
          const path = await resolveInRoot(tmp, dir, true);
          await mkdir(path, { recursive: true });
          await chmod(path, dir === 'tmp' ? 0o1777 : 0o755);
        }
      }
      await rename(tmp, root).catch(async (error: NodeJS.ErrnoException) => {
        // Another process unpacked the same image first: theirs is as good as ours.
        if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error;
      });
    } finally {
      await removeTree(tmp).catch(() => undefined);
    }
    return root;
  }

  /** Where `digest` is (or would be) unpacked. */
  path(digest: Digest): string {
    return join(this.dir, digestHex(digest));
  }

  /**
   * Moves a root that drifted (a file of it changed on the host) aside, so the next instance
   * of its image gets a fresh unpack; instances still running on it keep it (their mounts
   * hold it). Returns where it went, or undefined when it was not the current root.
   */
  async quarantine(root: string, digest: Digest): Promise<string | undefined> {
    if (root !== this.path(digest) || !(await exists(root))) return undefined;
    const aside = `${root}.drifted-${Date.now()}`;
    await rename(root, aside);
    return aside;
  }

  /** Removes a root moved aside, once nothing runs on it. */
  async removeAside(root: string): Promise<void> {
    if (/\.drifted-\d+$/.test(root)) await removeTree(root).catch(() => undefined);
  }
}

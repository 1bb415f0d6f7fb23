import { chmod, lutimes, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunStep } from '../config/types.js';
import { BakeError, reasonOf } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import { EPOCH, writeLayer, type WrittenLayer } from '../oci/layer-writer.js';
import { existingDirInRoot, resolveInRoot } from '../oci/safe-path.js';
import type { Descriptor } from '../oci/types.js';
import { applyLayer } from '../oci/unpack.js';
import type { ImageStore } from '../store/image-store.js';
import { removeTree } from '../store/remove-tree.js';
import { runInSandbox } from './sandbox.js';
import { diffSnapshots, snapshotTree, type OwnerMap, type Snapshot } from './snapshot.js';

/** What a run step needs besides its command. */
export interface RunContext {
  env: Array<[string, string]>;
  cwd: string;
  /** Prefix of error messages, e.g. `images.web.steps[2] (run npm ci)`. */
  where: string;
  /** Config path of the working folder, for its errors, e.g. `images.web.workdir`. */
  workdirKey: string;
  onLine: (line: string) => void;
  onWarning: (message: string) => void;
}

/**
 * The root filesystem run steps execute in: the image so far, unpacked once into the
 * store's temp folder and kept in step with every later layer. Without root, the owners
 * the layers gave (which cannot be applied on disk) are remembered beside it.
 */
export class SandboxRoot {
  private constructor(
    readonly dir: string,
    private readonly store: ImageStore,
    private readonly owners: OwnerMap | undefined,
  ) {}

  /** Unpacks `layers` into a fresh sandbox root. */
  static async create(store: ImageStore, layers: Descriptor[]): Promise<SandboxRoot> {
    const dir = store.blobs.tempPath('rootfs');
    await mkdir(dir, { recursive: true });
    const root = new SandboxRoot(dir, store, process.getuid?.() === 0 ? undefined : new Map());
    for (const layer of layers) await root.apply(layer.digest);
    return root;
  }

  /** Applies a layer that did not come from running in this root (a copy, or a cache hit). */
  async apply(digest: Digest): Promise<void> {
    await applyLayer(this.dir, this.store.blobs.stream(digest), { owners: this.owners });
  }

  /** Runs one step and captures what it changed as a layer (applied here already). */
  async run(step: RunStep, ctx: RunContext): Promise<WrittenLayer> {
    const before = await this.settledSnapshot();
    await this.ensureWorkdir(ctx);
    const argv = typeof step.command === 'string' ? ['/bin/sh', '-c', step.command] : step.command;
    const result = await runInSandbox({ root: this.dir, argv, env: ctx.env, cwd: ctx.cwd, onLine: ctx.onLine });
    if (result.exitCode !== 0) {
      if (result.tail.some((line) => /bwrap: execvp .*No such file or directory/.test(line))) {
        const hint = typeof step.command === 'string' ? ': shell-form run steps need /bin/sh; use the exec form (a list) or add a shell, e.g. from: { host: [node, busybox] }' : '';
        throw new BakeError(`${ctx.where}: ${argv[0]} not found in the image${hint}`);
      }
      const output = result.tail.length ? `:\n  ${result.tail.slice(-20).join('\n  ')}` : ' (it printed nothing)';
      throw new BakeError(`${ctx.where} failed with exit code ${result.exitCode}${output}`);
    }
    const after = await snapshotTree(this.dir, this.owners);
    const entries = diffSnapshots(this.dir, before, after, (path) => ctx.onWarning(`${ctx.where}: left '/${path}' out of the layer: fifos, sockets and devices are not baked`));
    for (const entry of entries) if (entry.type !== 'whiteout' && 'uid' in entry) this.owners?.set(entry.path, { uid: entry.uid, gid: entry.gid });
    try {
      return await writeLayer(this.store.blobs, entries);
    } catch (error) {
      throw new BakeError(`${ctx.where}: failed to write its layer: ${reasonOf(error)}`, { cause: error });
    }
  }

  /** Removes the root, even where a step made folders read-only. */
  async dispose(): Promise<void> {
    await removeTree(this.dir);
  }

  /**
   * Snapshots the root after setting every time stamp to the epoch, so a step sees the
   * same times whether the layers below came from the cache or were just built.
   */
  private async settledSnapshot(): Promise<Snapshot> {
    const snap = await snapshotTree(this.dir, this.owners);
    let touched = 0;
    for (const [path, info] of snap) {
      if (info.mtimeNs === 0n) continue;
      await lutimes(join(this.dir, path), EPOCH, EPOCH);
      touched++;
    }
    // Setting a time changes ctime, also of every hard link to the same file: look again.
    return touched === 0 ? snap : snapshotTree(this.dir, this.owners);
  }

  /** Creates the working folder when missing (it becomes part of the step's layer). */
  private async ensureWorkdir(ctx: RunContext): Promise<void> {
    if (ctx.cwd === '/' || (await existingDirInRoot(this.dir, ctx.cwd))) return;
    try {
      const path = await resolveInRoot(this.dir, ctx.cwd, true);
      await mkdir(path);
      await chmod(path, 0o755);
    } catch (error) {
      throw new BakeError(`${ctx.workdirKey}: expected a folder (or nothing) at "${ctx.cwd}" in the image: ${reasonOf(error)}`, { cause: error, exitCode: 2 });
    }
  }
}

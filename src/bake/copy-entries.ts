import { lstatSync } from 'node:fs';
import { lstat, readdir, readlink, realpath } from 'node:fs/promises';
import { basename, join, posix, sep } from 'node:path';
import picomatch from 'picomatch';
import type { CopyStep } from '../config/types.js';
import { BakeError } from '../errors.js';
import { sha256, type Digest } from '../oci/digest.js';
import type { LayerEntry } from '../oci/layer-writer.js';
import type { FileHasher } from './file-hasher.js';
import { mapLimit } from '../util/map-limit.js';
import { looksSecret } from './secrets.js';

/** Files hashed at once: enough to keep the disk and the thread pool busy. */
const HASH_CONCURRENCY = 16;

/** Folders never copied from a build context, whatever the spec says. */
export const ALWAYS_EXCLUDED = ['.git', '.imago'];

/** A copy step's layer entries and the digest of everything they were made from. */
export interface CopyInput {
  entries: LayerEntry[];
  /** Digest over every entry's path, type, mode, owner and content digest or link target. */
  inputDigest: Digest;
}

/**
 * Lists what a copy step puts into the image, hashing each file. Never reads outside the
 * build context: `src` must resolve (symlinks included) inside it, and symlinks below
 * `src` are copied as symlinks, never followed. Secret-looking files are refused unless
 * they are the `src` itself. `where` prefixes errors (e.g. `images.web.copy[0]`).
 */
export async function copyEntries(context: string, step: CopyStep, hasher: FileHasher, where: string, onFile?: () => void): Promise<CopyInput> {
  const contextReal = await realpath(context).catch((error: Error) => {
    throw new BakeError(`${where}: build context '${context}' is not readable: ${error.message}`, { cause: error });
  });
  const srcPath = join(contextReal, step.src);
  const srcReal = await realpath(srcPath).catch(() => {
    throw new BakeError(`${where}.src: "${step.src}" does not exist in the build context ${contextReal}`, { exitCode: 2 });
  });
  if (srcReal !== contextReal && !srcReal.startsWith(contextReal + sep)) {
    throw new BakeError(`${where}.src: expected a path inside the build context, got "${step.src}" (it resolves to ${srcReal})`, { exitCode: 2 });
  }
  const owner = step.owner;
  const entries: LayerEntry[] = [];
  const lines: string[] = [];
  const dest = posix.normalize(step.dest).replace(/^\/+|\/+$/g, '');
  /** Runs a file system call, naming the step and the file in any error. */
  const io = async <T>(rel: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (error) {
      throw new BakeError(`${where}: failed to read '${rel}' in the build context: ${(error as Error).message}`, { cause: error });
    }
  };
  const info = await io(step.src, () => lstat(srcReal));

  const addFile = async (abs: string, rel: string, target: string) => {
    // Synchronous, like the small-file reads (see SMALL_FILE): a promise per stat costs more than the stat.
    const st = await io(rel, async () => lstatSync(abs, { bigint: true }));
    if (!st.isFile()) throw new BakeError(`${where}: "${rel}" changed while it was being listed`);
    const digest = await io(rel, () => hasher.hash(abs, st));
    const mode = Number(st.mode);
    const finalMode = step.mode ?? (mode & 0o111 ? 0o755 : 0o644);
    onFile?.();
    return {
      entry: { type: 'file', path: target, mode: finalMode, uid: owner.uid, gid: owner.gid, size: Number(st.size), source: { file: abs, digest } } satisfies LayerEntry,
      line: `${target}\0f\0${finalMode}\0${owner.uid}:${owner.gid}\0${digest}`,
    };
  };

  if (info.isFile()) {
    // Named after the src as written: a symlinked src keeps its own name, not its target's.
    const target = step.dest.endsWith('/') ? posix.join(dest, basename(step.src)) : dest;
    if (target === '') throw new BakeError(`${where}.dest: expected a file path, got "${step.dest}"`, { exitCode: 2 });
    const file = await addFile(srcReal, step.src, target);
    entries.push(file.entry);
    lines.push(file.line);
  } else if (info.isDirectory()) {
    const excluded = compileExcludes(step.exclude);
    const secrets: string[] = [];
    const files: Array<{ abs: string; rel: string; target: string }> = [];
    if (dest !== '') {
      entries.push({ type: 'directory', path: dest, mode: 0o755, uid: owner.uid, gid: owner.gid });
      lines.push(`${dest}\0d\0${owner.uid}:${owner.gid}`);
    }
    // First list the tree (folders and links as they come), then hash the files side by side.
    const walk = async (dirAbs: string, rel: string): Promise<void> => {
      const children = await io(rel || step.src, () => readdir(dirAbs, { withFileTypes: true }));
      children.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const child of children) {
        const name = child.name;
        const childRel = rel ? `${rel}/${name}` : name;
        if (ALWAYS_EXCLUDED.includes(name) || excluded(childRel, name)) continue;
        const abs = join(dirAbs, name);
        const shown = posix.join(step.src, childRel);
        const target = dest ? `${dest}/${childRel}` : childRel;
        if (child.isDirectory()) {
          entries.push({ type: 'directory', path: target, mode: 0o755, uid: owner.uid, gid: owner.gid });
          lines.push(`${target}\0d\0${owner.uid}:${owner.gid}`);
          await walk(abs, childRel);
        } else if (child.isSymbolicLink()) {
          const link = await io(shown, () => readlink(abs));
          entries.push({ type: 'symlink', path: target, target: link, uid: owner.uid, gid: owner.gid });
          lines.push(`${target}\0l\0${owner.uid}:${owner.gid}\0${link}`);
        } else if (child.isFile()) {
          if (looksSecret(name)) secrets.push(shown);
          else files.push({ abs, rel: shown, target });
        } else {
          throw new BakeError(`${where}: "${shown}" is not a file, folder or symlink (sockets, fifos and devices cannot be copied): exclude it`, { exitCode: 2 });
        }
      }
    };
    await walk(srcReal, '');
    if (secrets.length > 0) {
      const shown = secrets.slice(0, 10).join(', ') + (secrets.length > 10 ? `, … (${secrets.length} in all)` : '');
      throw new BakeError(
        `${where}: refusing to bake files that look like secrets: ${shown}. Exclude them, or name each one as a copy's own src to bake it on purpose; inject secrets at run time instead`,
        { exitCode: 2 },
      );
    }
    for (const file of await mapLimit(files, HASH_CONCURRENCY, (f) => addFile(f.abs, f.rel, f.target))) {
      entries.push(file.entry);
      lines.push(file.line);
    }
  } else {
    throw new BakeError(`${where}.src: "${step.src}" is not a file or folder`, { exitCode: 2 });
  }
  lines.sort();
  // The folders above dest are left out on purpose: an entry for /tmp or /usr would reset the
  // mode and owner a lower layer gave them. Unpackers create missing ones as 0755.
  return { entries, inputDigest: sha256(lines.join('\n')) };
}

/** Builds the exclude matcher: patterns without "/" match a name at any depth, others match from `src`. */
function compileExcludes(patterns: string[]): (rel: string, name: string) => boolean {
  if (patterns.length === 0) return () => false;
  const anywhere = patterns.filter((p) => !p.replace(/\/$/, '').includes('/')).map((p) => p.replace(/\/$/, ''));
  const anchored = patterns.filter((p) => p.replace(/\/$/, '').includes('/')).map((p) => p.replace(/^\//, '').replace(/\/$/, ''));
  const byName = anywhere.length ? picomatch(anywhere, { dot: true }) : () => false;
  const byPath = anchored.length ? picomatch(anchored, { dot: true }) : () => false;
  return (rel, name) => byName(name) || byPath(rel);
}

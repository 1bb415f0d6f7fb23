import { lstat, readdir, readlink, realpath } from 'node:fs/promises';
import { basename, join, posix, sep } from 'node:path';
import picomatch from 'picomatch';
import type { CopyStep } from '../config/types.js';
import { BakeError } from '../errors.js';
import { sha256, type Digest } from '../oci/digest.js';
import type { LayerEntry } from '../oci/layer-writer.js';
import type { FileHasher } from './file-hasher.js';
import { looksSecret } from './secrets.js';

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

  const addFile = async (abs: string, rel: string, target: string, mode: number, size: number) => {
    const digest = await io(rel, () => hasher.hash(abs));
    const finalMode = step.mode ?? (mode & 0o111 ? 0o755 : 0o644);
    entries.push({ type: 'file', path: target, mode: finalMode, uid: owner.uid, gid: owner.gid, size, source: { file: abs, digest } });
    lines.push(`${target}\0f\0${finalMode}\0${owner.uid}:${owner.gid}\0${digest}`);
    onFile?.();
  };

  if (info.isFile()) {
    // Named after the src as written: a symlinked src keeps its own name, not its target's.
    const target = step.dest.endsWith('/') ? posix.join(dest, basename(step.src)) : dest;
    if (target === '') throw new BakeError(`${where}.dest: expected a file path, got "${step.dest}"`, { exitCode: 2 });
    await addFile(srcReal, step.src, target, info.mode, info.size);
  } else if (info.isDirectory()) {
    const excluded = compileExcludes(step.exclude);
    const secrets: string[] = [];
    if (dest !== '') {
      entries.push({ type: 'directory', path: dest, mode: 0o755, uid: owner.uid, gid: owner.gid });
      lines.push(`${dest}\0d\0${owner.uid}:${owner.gid}`);
    }
    const walk = async (dirAbs: string, rel: string): Promise<void> => {
      const names = (await io(rel || step.src, () => readdir(dirAbs))).sort();
      for (const name of names) {
        const childRel = rel ? `${rel}/${name}` : name;
        if (ALWAYS_EXCLUDED.includes(name) || excluded(childRel, name)) continue;
        const abs = join(dirAbs, name);
        const shown = posix.join(step.src, childRel);
        const st = await io(shown, () => lstat(abs));
        const target = dest ? `${dest}/${childRel}` : childRel;
        if (st.isDirectory()) {
          entries.push({ type: 'directory', path: target, mode: 0o755, uid: owner.uid, gid: owner.gid });
          lines.push(`${target}\0d\0${owner.uid}:${owner.gid}`);
          await walk(abs, childRel);
        } else if (st.isSymbolicLink()) {
          const link = await io(shown, () => readlink(abs));
          entries.push({ type: 'symlink', path: target, target: link, uid: owner.uid, gid: owner.gid });
          lines.push(`${target}\0l\0${owner.uid}:${owner.gid}\0${link}`);
        } else if (st.isFile()) {
          if (looksSecret(name)) {
            secrets.push(shown);
            continue;
          }
          await addFile(abs, shown, target, st.mode, st.size);
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

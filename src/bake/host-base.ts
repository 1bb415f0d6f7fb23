import { execFile } from 'node:child_process';
import { access, constants, realpath, stat } from 'node:fs/promises';
import { delimiter, isAbsolute, join, posix } from 'node:path';
import { promisify } from 'node:util';
import { BakeError } from '../errors.js';
import { sha256 } from '../oci/digest.js';
import type { LayerEntry } from '../oci/layer-writer.js';
import { withParents } from '../oci/layer-writer.js';
import type { FileHasher } from './file-hasher.js';

const run = promisify(execFile);

/** A host base layer's entries and the digest of what it was made from. */
export interface HostBase {
  entries: LayerEntry[];
  inputDigest: string;
  /** Paths inside the image, for messages. */
  paths: string[];
}

/** Finds an executable on PATH (or checks an absolute path). */
export async function findExecutable(name: string): Promise<string> {
  const candidates = isAbsolute(name) ? [name] : (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter).map((dir) => join(dir, name));
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.X_OK);
      if ((await stat(candidate)).isFile()) return candidate;
    } catch {
      // not here; try the next folder
    }
  }
  throw new BakeError(`from.host: executable "${name}" not found${isAbsolute(name) ? '' : ' on PATH'}`, { exitCode: 2 });
}

/** Lists the shared libraries (and the dynamic loader) an executable needs, as ldd reports them. */
export async function sharedLibraries(executable: string): Promise<string[]> {
  let output: string;
  try {
    output = (await run('ldd', [executable])).stdout;
  } catch (error) {
    const text = `${(error as { stdout?: string }).stdout ?? ''}${(error as { stderr?: string }).stderr ?? ''}`;
    if (/not a dynamic executable|statically linked/.test(text)) return [];
    throw new BakeError(`failed to list shared libraries of '${executable}': ${text.trim() || (error as Error).message}`, { cause: error });
  }
  if (/statically linked/.test(output)) return [];
  const libs: string[] = [];
  for (const line of output.split('\n')) {
    const arrow = /=>\s+(\/\S+)\s+\(/.exec(line);
    const bare = /^\s*(\/\S+)\s+\(/.exec(line);
    const path = arrow?.[1] ?? bare?.[1];
    if (path) libs.push(path);
    else if (/=>\s+not found/.test(line)) throw new BakeError(`'${executable}' needs a library that is missing on this host: ${line.trim()}`);
  }
  return libs;
}

/**
 * The entries of a base layer made of host executables and the closure of their shared
 * libraries, each at the path the host uses (its content read through symlinks), plus a
 * world-writable /tmp, and `/bin/sh` when busybox is among them. Modes are normalised;
 * owners are root.
 */
export async function hostBaseEntries(executables: string[], hasher: FileHasher): Promise<HostBase> {
  const files = new Map<string, string>();
  const links: LayerEntry[] = [];
  for (const name of executables) {
    const exe = await findExecutable(name);
    files.set(exe, exe);
    // busybox is the shell of a host base: give it the /bin/sh that shell-form run steps use.
    if (/(^|\/)busybox$/.test(exe)) links.push({ type: 'symlink', path: 'bin/sh', target: exe, uid: 0, gid: 0 });
    for (const lib of await sharedLibraries(exe)) files.set(lib, lib);
  }
  const entries: LayerEntry[] = [{ type: 'directory', path: 'tmp', mode: 0o1777, uid: 0, gid: 0 }, ...links];
  const lines: string[] = [];
  for (const path of [...files.keys()].sort()) {
    const real = await realpath(path);
    const st = await stat(real);
    const mode = st.mode & 0o111 ? 0o755 : 0o644;
    const rel = posix.normalize(path).replace(/^\/+/, '');
    const digest = await hasher.hash(real);
    entries.push({ type: 'file', path: rel, mode, uid: 0, gid: 0, size: st.size, source: { file: real, digest } });
    lines.push(`${rel}\0${mode}\0${digest}`);
  }
  for (const link of links) lines.push(`${link.path}\0l\0${link.type === 'symlink' ? link.target : ''}`);
  return { entries: withParents(entries), inputDigest: sha256(lines.join('\n')), paths: [...files.keys()].sort() };
}

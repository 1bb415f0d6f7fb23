import { execFile } from 'node:child_process';
import { access, chmod, constants, copyFile, mkdir, realpath, stat, symlink } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * What docker gets in place of imago's `from: { host: [...] }`: the same files at the same
 * paths, prepared in a folder that a `FROM scratch` Dockerfile copies to `/`.
 */
export interface HostRoot {
  /** Absolute host paths copied (executables and their shared libraries). */
  paths: string[];
  bytes: number;
}

/** Finds an executable on PATH, as imago's host base does. */
async function which(name: string): Promise<string> {
  for (const dir of (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)) {
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      if ((await stat(candidate)).isFile()) return candidate;
    } catch {
      // not in this folder
    }
  }
  throw new Error(`expected "${name}" on PATH, got nothing`);
}

/** The shared libraries `ldd` lists for an executable (none for a static one). */
async function sharedLibraries(executable: string): Promise<string[]> {
  let output: string;
  try {
    output = (await run('ldd', [executable])).stdout;
  } catch {
    return []; // "not a dynamic executable"
  }
  const libs: string[] = [];
  for (const line of output.split('\n')) {
    const path = /=>\s+(\/\S+)\s+\(/.exec(line)?.[1] ?? /^\s*(\/\S+)\s+\(/.exec(line)?.[1];
    if (path) libs.push(path);
  }
  return libs;
}

/**
 * Copies host executables and their `ldd` closure into `dir` at their host paths (content
 * read through symlinks, mode 0755 or 0644), adds a 1777 `tmp/`, and `bin/sh -> busybox`
 * when busybox is among them: the files of imago's host base layer.
 */
export async function writeHostRoot(dir: string, executables: string[]): Promise<HostRoot> {
  const files = new Set<string>();
  let shell: string | undefined;
  for (const name of executables) {
    const exe = await which(name);
    files.add(exe);
    if (/(^|\/)busybox$/.test(exe)) shell = exe;
    for (const lib of await sharedLibraries(exe)) files.add(lib);
  }
  let bytes = 0;
  for (const path of [...files].sort()) {
    const target = join(dir, path);
    await mkdir(dirname(target), { recursive: true, mode: 0o755 });
    const real = await realpath(path);
    const st = await stat(real);
    await copyFile(real, target);
    await chmod(target, st.mode & 0o111 ? 0o755 : 0o644);
    bytes += st.size;
  }
  await mkdir(join(dir, 'tmp'), { recursive: true });
  await chmod(join(dir, 'tmp'), 0o1777);
  if (shell) {
    await mkdir(join(dir, 'bin'), { recursive: true, mode: 0o755 });
    await symlink(shell, join(dir, 'bin', 'sh'));
  }
  return { paths: [...files].sort(), bytes };
}

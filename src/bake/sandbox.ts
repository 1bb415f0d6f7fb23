import { spawn } from 'node:child_process';
import { access, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { BakeError } from '../errors.js';
import { MOUNT_POINTS } from './snapshot.js';

/** How to run one bake-time command. */
export interface SandboxRun {
  /** Root filesystem the command sees as `/` (read-write). */
  root: string;
  /** argv inside the sandbox. */
  argv: string[];
  env: Array<[string, string]>;
  cwd: string;
  /** Each line the command prints (stdout and stderr). */
  onLine?: (line: string) => void;
}

/** The result of a sandboxed command. */
export interface SandboxResult {
  exitCode: number;
  /** The last lines it printed, for error messages. */
  tail: string[];
}

const INSTALL_HINT = 'install it with: apt-get install -y bubblewrap';

/** Path of the bubblewrap binary, or a BakeError saying how to install it. */
export async function findBwrap(): Promise<string> {
  for (const candidate of [process.env.IMAGO_BWRAP, '/usr/bin/bwrap', '/usr/local/bin/bwrap'].filter(Boolean) as string[]) {
    try {
      await access(candidate);
      return candidate;
    } catch {
      // try the next one
    }
  }
  throw new BakeError(`bubblewrap (bwrap) is needed to run bake steps and was not found: ${INSTALL_HINT}`);
}

/**
 * Runs a command with bubblewrap inside `root`: all namespaces unshared (no network,
 * so a bake cannot depend on the outside), a fresh /proc, /dev and /tmp, a clean
 * environment, and death with the parent. Mount points it had to create are removed after.
 * The command runs as root: the real one, or the caller mapped to root in a user namespace.
 */
export async function runInSandbox(run: SandboxRun): Promise<SandboxResult> {
  const bwrap = await findBwrap();
  const created: string[] = [];
  for (const dir of MOUNT_POINTS) {
    try {
      await access(join(run.root, dir));
    } catch {
      created.push(dir);
    }
  }
  const args = ['--bind', run.root, '/', '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp', '--unshare-all', '--die-with-parent', '--new-session', '--clearenv'];
  // Without root, a user namespace maps the caller to root inside, as a bake step expects.
  if (process.getuid?.() !== 0) args.push('--unshare-user', '--uid', '0', '--gid', '0');
  for (const [key, value] of run.env) args.push('--setenv', key, value);
  args.push('--chdir', run.cwd, '--', ...run.argv);
  const tail: string[] = [];
  const exitCode = await new Promise<number>((resolve, reject) => {
    const child = spawn(bwrap, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let partial = { out: '', err: '' };
    const feed = (key: 'out' | 'err') => (chunk: Buffer) => {
      const text = partial[key] + chunk.toString('utf8');
      const lines = text.split('\n');
      partial[key] = lines.pop() ?? '';
      for (const line of lines) emit(line);
    };
    const emit = (line: string) => {
      tail.push(line);
      if (tail.length > 40) tail.shift();
      run.onLine?.(line);
    };
    child.stdout.on('data', feed('out'));
    child.stderr.on('data', feed('err'));
    child.on('error', (error) => reject(new BakeError(`failed to start bubblewrap: ${error.message}`, { cause: error })));
    child.on('close', (code, signal) => {
      for (const rest of [partial.out, partial.err]) if (rest) emit(rest);
      partial = { out: '', err: '' };
      resolve(code ?? (signal ? 128 : 1));
    });
  });
  for (const dir of created) await rmdir(join(run.root, dir)).catch(() => undefined);
  return { exitCode, tail };
}

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

/**
 * Docker's default capability set: what a root build step may do (chown, setuid, bind low
 * ports…), without the powers to leave the sandbox (no CAP_SYS_ADMIN, no CAP_SYS_PTRACE).
 */
const BUILD_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW', 'CAP_SYS_CHROOT', 'CAP_MKNOD', 'CAP_AUDIT_WRITE', 'CAP_SETFCAP',
];

/**
 * Namespaces for a step. As root: no user namespace (so every owner the image uses exists
 * and chown works), with capabilities cut to Docker's default set. Without root: a user
 * namespace that maps the caller to root, which is what makes a sandbox possible at all.
 */
function namespaceArgs(): string[] {
  const common = ['--unshare-ipc', '--unshare-pid', '--unshare-net', '--unshare-uts', '--unshare-cgroup-try'];
  if (process.getuid?.() === 0) return [...common, '--cap-drop', 'ALL', ...BUILD_CAPABILITIES.flatMap((cap) => ['--cap-add', cap])];
  return [...common, '--unshare-user', '--uid', '0', '--gid', '0'];
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
 * Runs a command with bubblewrap inside `root`: its own pid, ipc, uts (hostname "imago")
 * and network namespaces (no network, so a bake cannot depend on the outside), a fresh
 * /proc, /dev and /tmp, a clean environment, umask 022, and death with the parent. Mount
 * points it had to create are removed after. The command runs as root (see namespaceArgs).
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
  const args = ['--bind', run.root, '/', '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp', ...namespaceArgs(), '--hostname', 'imago'];
  args.push('--die-with-parent', '--new-session', '--clearenv');
  for (const [key, value] of run.env) args.push('--setenv', key, value);
  args.push('--chdir', run.cwd, '--', ...run.argv);
  const tail: string[] = [];
  const exitCode = await new Promise<number>((resolve, reject) => {
    // A fixed umask: what a step creates must not depend on the caller's (bwrap has no option for it).
    const child = spawn('/bin/sh', ['-c', 'umask 022 && exec "$0" "$@"', bwrap, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
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

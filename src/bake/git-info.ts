import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The git commit a folder is checked out at, and whether the folder has uncommitted changes. */
export interface GitInfo {
  commit: string;
  dirty: boolean;
}

/** Reads git's view of a folder; undefined when it is not in a git work tree or git is missing. */
export async function gitInfo(dir: string): Promise<GitInfo | undefined> {
  try {
    const opts = { cwd: dir, timeout: 5000 };
    const commit = (await run('git', ['rev-parse', 'HEAD'], opts)).stdout.trim();
    const status = (await run('git', ['status', '--porcelain', '--', '.'], opts)).stdout.trim();
    return /^[0-9a-f]{40,64}$/.test(commit) ? { commit, dirty: status.length > 0 } : undefined;
  } catch {
    return undefined;
  }
}

import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exists } from '../../util/exists.js';

const ROOT = '/sys/fs/cgroup';

/** Where an instance's limits live: the `cgroup.procs` files its sandbox joins before it starts. */
export interface InstanceCgroup {
  procs: string[];
  dirs: string[];
}

/**
 * Makes the cgroups that hold one instance to its memory (without swap) and pids limits:
 * `<root>/imago/<id>` on cgroup v2, or in the v1 `memory` and `pids` hierarchies. Needs the
 * right to write there (root, or a delegated tree); without it, or without cgroups, it
 * returns the reason instead, and the instance runs without limits.
 */
export async function instanceCgroup(id: string, limits: { memory: number; pids: number }): Promise<InstanceCgroup | { unavailable: string }> {
  try {
    if (await exists(join(ROOT, 'cgroup.controllers'))) {
      const parent = join(ROOT, 'imago');
      await mkdir(parent, { recursive: true });
      const wanted = ['memory', 'pids'];
      const enabled = (await readFile(join(parent, 'cgroup.subtree_control'), 'utf8').catch(() => '')).split(/\s+/);
      const missing = wanted.filter((c) => !enabled.includes(c));
      if (missing.length) {
        await writeFile(join(ROOT, 'cgroup.subtree_control'), missing.map((c) => `+${c}`).join(' ')).catch(() => undefined);
        await writeFile(join(parent, 'cgroup.subtree_control'), missing.map((c) => `+${c}`).join(' '));
      }
      const dir = join(parent, id);
      await mkdir(dir);
      await limited([dir], async () => {
        await writeFile(join(dir, 'memory.max'), String(limits.memory));
        await writeFile(join(dir, 'memory.swap.max'), '0').catch(() => undefined); // absent without swap accounting
        await writeFile(join(dir, 'pids.max'), String(limits.pids));
      });
      return { procs: [join(dir, 'cgroup.procs')], dirs: [dir] };
    }
    if ((await exists(join(ROOT, 'memory', 'memory.limit_in_bytes'))) && (await exists(join(ROOT, 'pids')))) {
      const memory = join(ROOT, 'memory', 'imago', id);
      const pids = join(ROOT, 'pids', 'imago', id);
      await limited([memory, pids], async () => {
        await mkdir(memory, { recursive: true });
        await mkdir(pids, { recursive: true });
        await writeFile(join(memory, 'memory.limit_in_bytes'), String(limits.memory));
        await writeFile(join(memory, 'memory.memsw.limit_in_bytes'), String(limits.memory)).catch(() => undefined); // absent without swap accounting
        await writeFile(join(pids, 'pids.max'), String(limits.pids));
      });
      return { procs: [join(memory, 'cgroup.procs'), join(pids, 'cgroup.procs')], dirs: [memory, pids] };
    }
    return { unavailable: `no cgroup v2 or v1 memory and pids controllers under ${ROOT}` };
  } catch (error) {
    return { unavailable: `cannot make its cgroups (${(error as NodeJS.ErrnoException).code ?? String(error)}): limits need root or a delegated cgroup tree` };
  }
}

/**
 * Removes an instance's cgroups. The kernel refuses (EBUSY) while a killed process is still
 * on its way out, so each is tried again until it goes, for up to a second.
 */
export async function removeCgroup(dirs: string[]): Promise<void> {
  for (const dir of dirs) {
    const deadline = Date.now() + 1000;
    for (;;) {
      const code = await rmdir(dir).then(
        () => undefined,
        (error: NodeJS.ErrnoException) => error.code,
      );
      if (code !== 'EBUSY' || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/**
 * The shell script that moves itself into the instance's cgroups, then becomes bubblewrap:
 * every process of the instance starts inside its limits, with no window before.
 */
export const JOIN_CGROUPS_SCRIPT = 'for f in $IMAGO_CGROUP_PROCS; do echo $$ > "$f" || exit 125; done; exec "$@"';

/** Runs `work`; if it fails, removes the cgroups it was setting up before passing the error on. */
async function limited(dirs: string[], work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    await removeCgroup(dirs);
    throw error;
  }
}

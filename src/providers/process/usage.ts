import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cpuSecondsOf } from '../../util/pids.js';
import type { InstanceUsage } from '../provider.js';

const readText = (file: string) => readFile(file, 'utf8').catch(() => undefined);

/**
 * An instance's CPU time (seconds, since it started) and memory in use (bytes), from its
 * cgroups: cgroup v2's `cpu.stat` and `memory.current`; on v1, the memory cgroup's usage and the
 * CPU times of the processes it holds (instances join no cpuacct group). Without cgroups, the
 * app's own process. Undefined when nothing can be read.
 */
export async function instanceUsage(cgroups: string[], appPid: number): Promise<InstanceUsage | undefined> {
  for (const dir of cgroups) {
    const v2 = await readText(join(dir, 'memory.current'));
    if (v2 !== undefined) {
      const usec = /usage_usec (\d+)/.exec((await readText(join(dir, 'cpu.stat'))) ?? '')?.[1];
      const inactive = Number(/^inactive_file (\d+)$/m.exec((await readText(join(dir, 'memory.stat'))) ?? '')?.[1] ?? 0);
      return { cpuSeconds: usec === undefined ? 0 : Number(usec) / 1e6, memoryBytes: Math.max(0, Number(v2.trim()) - inactive) };
    }
    const v1 = await readText(join(dir, 'memory.usage_in_bytes'));
    if (v1 !== undefined) {
      const pids = ((await readText(join(dir, 'cgroup.procs'))) ?? '').split('\n').filter(Boolean).map(Number);
      let cpu = 0;
      for (const pid of pids) cpu += cpuSecondsOf(pid) ?? 0;
      // Page cache the instance's files filled is counted in usage; inactive cache is what `docker stats` leaves out too.
      const inactive = Number(/^total_inactive_file (\d+)$/m.exec((await readText(join(dir, 'memory.stat'))) ?? '')?.[1] ?? 0);
      return { cpuSeconds: cpu, memoryBytes: Math.max(0, Number(v1.trim()) - inactive) };
    }
  }
  const cpu = cpuSecondsOf(appPid);
  if (cpu === undefined) return undefined;
  const rss = /^VmRSS:\s+(\d+) kB$/m.exec((await readText(`/proc/${appPid}/status`)) ?? '')?.[1];
  return { cpuSeconds: cpu, memoryBytes: Number(rss ?? 0) * 1024 };
}

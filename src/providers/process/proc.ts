import { procStat } from '../../util/pids.js';

/**
 * The start time of a process (field 22 of /proc/<pid>/stat, in clock ticks since boot), or
 * undefined when it does not run. Together with the pid it names one process for good: a
 * reused pid has another start time.
 */
export function processStartTime(pid: number): string | undefined {
  const fields = procStat(pid);
  if (!fields || fields[0] === 'Z') return undefined; // gone, or a zombie: it has exited
  return fields[19];
}

/** True when the process `pid` that started at `startTime` still runs. */
export function isRunning(pid: number, startTime: string): boolean {
  return processStartTime(pid) === startTime;
}

/** Sends a signal, ignoring a process that is already gone. */
export function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** The process group of `pid`, or undefined when it does not run. */
export function processGroupOf(pid: number): number | undefined {
  const fields = procStat(pid);
  return !fields || fields[0] === 'Z' ? undefined : Number(fields[2]);
}

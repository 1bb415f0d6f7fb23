import { readdirSync, readFileSync } from 'node:fs';

/** True when a process with this pid runs on this host (one we may not signal counts). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A process's command line, arguments split (empty when it is gone or not readable). */
export function commandLine(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/** The pid written in `file`, when it holds one. */
export function readPidFile(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Resolves once `pid` is gone, or with false after `timeoutMs`. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (alive(pid) && !isZombie(pid)) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

/**
 * A process that exited and waits for its parent to reap it. Its main thread can be a zombie
 * while its other threads still exit (and hold its files, a listening socket among them):
 * it is done only when no other thread is left.
 */
function isZombie(pid: number): boolean {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return /^State:\s+Z/m.test(status) && Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? 1) <= 1;
  } catch {
    return false;
  }
}

/**
 * The processes `pid` started that still run as its children (from /proc; empty when it is
 * gone). Every thread's children: a child forked by another thread than the main one is
 * listed under that thread only.
 */
export function childrenOf(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out = new Set<number>();
  for (const task of tasks) {
    try {
      for (const child of readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) out.add(Number(child));
    } catch {
      // the thread ended meanwhile
    }
  }
  return [...out];
}

/**
 * Ends a process: `ask` (a request to stop, or a signal), then SIGKILL if it has not exited
 * within `graceMs`. Resolves once it is gone (or after another `graceMs`).
 */
export async function endProcess(pid: number, ask: () => Promise<void> | void, graceMs = 5_000): Promise<void> {
  await Promise.resolve().then(ask).catch(() => undefined);
  if (await waitForExit(pid, graceMs)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone meanwhile
  }
  await waitForExit(pid, graceMs);
}

/**
 * SIGKILLs a process and the processes it started (a stopped child would not notice its
 * parent's death, and keep what it holds: HAProxy's worker its port), and waits until all are gone.
 */
export async function killTree(pid: number): Promise<void> {
  const all = [pid, ...childrenOf(pid)];
  // A detached process leads its own group: the group goes too, whatever /proc listed.
  if (Number(procStat(pid)?.[2]) === pid) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  for (const p of all) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  for (const p of all) await waitForExit(p, 5_000);
}

/**
 * The fields of /proc/<pid>/stat (with `thread`, of /proc/<pid>/task/<thread>/stat) after the
 * command name, the state (field 3) first, or undefined when the process or thread is gone.
 * The name is in parentheses and may hold spaces, so the fields are counted from after its
 * last `)`.
 */
export function procStat(pid: number, thread?: string): string[] | undefined {
  try {
    const stat = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Kernel clock ticks per second in /proc/<pid>/stat (USER_HZ: 100 on every Linux that imago runs on). */
const TICKS_PER_SECOND = 100;

/** The CPU time (utime + stime, seconds) one process has used, or undefined when it is gone. */
export function cpuSecondsOf(pid: number): number | undefined {
  // utime and stime: fields 14 and 15 of the stat line, the 12th and 13th after the command.
  const fields = procStat(pid);
  return fields ? (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND : undefined;
}

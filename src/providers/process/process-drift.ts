import { readdir, readFile, readlink } from 'node:fs/promises';

/** What `/proc` says of one process. */
export interface ProcInfo {
  pid: number;
  ppid: number;
  pidNs: string | undefined;
  mntNs: string | undefined;
  command: string;
}

/** Every process of this machine as `/proc` shows it (one pass, shared by the checks of all instances). */
export async function processTable(): Promise<Map<number, ProcInfo>> {
  const all = new Map<number, ProcInfo>();
  for (const name of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const info = await procInfo(Number(name));
    if (info) all.set(info.pid, info);
  }
  return all;
}

/**
 * Processes inside an instance that imago did not start: in the app's pid or mount namespace
 * but not descended from the app (someone entered it with `nsenter`, or ran a process into
 * its namespaces). One line each, with the pid and command. The app's own children are its
 * business, not drift. A namespace the app shares with this process (no sandbox) is not
 * looked at.
 */
export function intrudersIn(table: Map<number, ProcInfo>, appPid: number, self: { pidNs: string | undefined; mntNs: string | undefined }): string[] {
  const app = table.get(appPid);
  if (!app) return [];
  const pidNs = app.pidNs !== self.pidNs ? app.pidNs : undefined;
  const mntNs = app.mntNs !== self.mntNs ? app.mntNs : undefined;
  if (!pidNs && !mntNs) return [];
  const descendsFromApp = (info: ProcInfo): boolean => {
    const seen = new Set<number>();
    for (let at: ProcInfo | undefined = info; at && !seen.has(at.pid); at = table.get(at.ppid)) {
      if (at.pid === appPid) return true;
      seen.add(at.pid);
    }
    return false;
  };
  const lines: string[] = [];
  for (const info of table.values()) {
    if (info.pid === appPid) continue;
    const inside = (pidNs !== undefined && info.pidNs === pidNs) || (mntNs !== undefined && info.mntNs === mntNs);
    if (inside && !descendsFromApp(info)) lines.push(`process imago did not start inside the instance (nsenter?): pid ${info.pid} '${info.command}'`);
  }
  return lines.sort();
}

/** This process's own namespaces (what "not sandboxed" looks like). */
export async function ownNamespaces(): Promise<{ pidNs: string | undefined; mntNs: string | undefined }> {
  const [pidNs, mntNs] = await Promise.all([readlink('/proc/self/ns/pid').catch(() => undefined), readlink('/proc/self/ns/mnt').catch(() => undefined)]);
  return { pidNs, mntNs };
}

/**
 * How the app process differs from what its instance was started as: its executable (one no
 * longer in its image, or replaced while it runs) and its environment (against `expected`).
 * `imageHas` says whether a path is a file of the image.
 */
export async function appDrift(appPid: number, expected: { env?: Array<[string, string]>; imageHas: (path: string) => boolean | undefined }): Promise<string[]> {
  const lines: string[] = [];
  const exe = await readlink(`/proc/${appPid}/exe`).catch(() => undefined);
  if (exe !== undefined) {
    if (exe.endsWith(' (deleted)')) lines.push(`its executable ${exe.slice(0, -' (deleted)'.length)} was deleted or replaced while it ran`);
    else if (expected.imageHas(exe) === false) lines.push(`runs ${exe}, which is not a file of its image`);
  }
  if (expected.env) {
    const raw = await readFile(`/proc/${appPid}/environ`).catch(() => undefined);
    const entries = raw ? raw.toString('utf8').split('\0').filter(Boolean) : [];
    // Only an environment block that still reads as one: an app may write its process title
    // over it (nginx, setproctitle), which is no drift.
    if (entries.length > 0 && entries.filter((e) => /^[A-Za-z_][A-Za-z0-9_]*=/.test(e)).length * 2 >= entries.length) {
      const seen = new Map(entries.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)] as const));
      // Every variable of the release, with its value; extra ones (a shell's SHLVL and _, bubblewrap's PWD) are the app's own.
      const changed = expected.env.filter(([k, v]) => k !== 'PWD' && seen.get(k) !== v).map(([k]) => k);
      if (changed.length > 0) lines.push(`its environment differs from its release: ${[...new Set(changed)].sort().join(', ')}`);
    }
  }
  return lines;
}

async function procInfo(pid: number): Promise<ProcInfo | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const ppid = Number(/^PPid:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    const [pidNs, mntNs, cmdline] = await Promise.all([
      readlink(`/proc/${pid}/ns/pid`).catch(() => undefined),
      readlink(`/proc/${pid}/ns/mnt`).catch(() => undefined),
      readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''),
    ]);
    return { pid, ppid, pidNs, mntNs, command: cmdline.split('\0').filter(Boolean).join(' ').slice(0, 120) || (/^Name:\s+(.*)$/m.exec(status)?.[1] ?? '?') };
  } catch {
    return undefined;
  }
}

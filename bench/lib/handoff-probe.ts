import { existsSync } from 'node:fs';
import { runChild } from './child.js';

/**
 * Reads every file under a folder one at a time with fs.promises.readFile, awaiting each:
 * the pattern of imago's copy step, where each small file costs several hand-offs between
 * Node's main thread and its libuv thread pool.
 */
const SERIAL_READS = `
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
const root = process.argv[1];
const files = [];
for (const d of await readdir(root)) for (const f of await readdir(join(root, d))) files.push(join(root, d, f));
const t = performance.now();
for (const f of files) await readFile(f);
process.stdout.write(String(performance.now() - t));
`;

/** What the probe measured: serial reads on any core, and pinned to one core (when taskset exists). */
export interface HandoffProbe {
  files: number;
  anyCoreMs: number;
  oneCoreMs: number | undefined;
}

/**
 * Times serial small-file reads, free to use both cores and pinned to one. A large gap means
 * waking a thread on the other core is slow on this machine at this moment (a VM whose
 * vCPUs share a busy host), which slows imago's per-file work far more than docker's.
 */
export async function probeHandoffs(treeDir: string, files: number): Promise<HandoffProbe> {
  const once = async (prefix: string[]): Promise<number> => {
    const [file, ...args] = [...prefix, process.execPath, '--input-type=module', '-e', SERIAL_READS, treeDir];
    const child = await runChild(file!, args);
    if (child.code !== 0) throw new Error(`expected the hand-off probe to succeed, got exit code ${child.code}: ${child.stderr.trim()}`);
    return Number(child.stdout);
  };
  await once([]); // warm the page cache
  const anyCoreMs = await once([]);
  const oneCoreMs = existsSync('/usr/bin/taskset') ? await once(['/usr/bin/taskset', '-c', '0']) : undefined;
  return { files, anyCoreMs, oneCoreMs };
}

/** One line for the report. */
export function describeProbe(probe: HandoffProbe, when: string): string {
  const pinned = probe.oneCoreMs === undefined ? '' : `, ${Math.round(probe.oneCoreMs)} ms pinned to one core (taskset -c 0)`;
  return `hand-off probe ${when}: reading the ${probe.files} tree files one at a time in Node took ${Math.round(probe.anyCoreMs)} ms on both cores${pinned}`;
}

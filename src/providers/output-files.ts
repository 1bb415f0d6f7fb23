import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { OutputRead, OutputStream, Provider } from './provider.js';

/**
 * How the process and docker providers keep an instance's output: one file per stream in
 * their logs folder, `<id>.log` for stdout (the name the single output file had, so instances
 * started before the streams were apart read on as stdout) and `<id>.err.log` for stderr. The
 * files are appended to by the instance itself (process) or by the engine's log copier
 * (docker), never by a reader.
 */
export class OutputFiles {
  constructor(private readonly dir: string) {}

  /** The file holding `stream` of instance `id`. */
  path(id: string, stream: OutputStream): string {
    return join(this.dir, stream === 'stdout' ? `${id}.log` : `${id}.err.log`);
  }

  /** Reads `stream` of `id` from `position` into `buffer` (a missing file reads as empty). */
  read(id: string, stream: OutputStream, position: number, buffer: Buffer): Promise<OutputRead> {
    return readFileAt(this.path(id, stream), position, buffer);
  }

  /** Removes both files of `id`. */
  async forget(id: string): Promise<void> {
    await rm(this.path(id, 'stdout'), { force: true });
    await rm(this.path(id, 'stderr'), { force: true });
  }
}

/** Reads `file` from `position` into `buffer`, with the file's size; a missing file reads as empty. */
export async function readFileAt(file: string, position: number, buffer: Buffer): Promise<OutputRead> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { bytes: 0, size: 0 };
    throw error;
  }
  try {
    const { size } = await handle.stat();
    if (buffer.length === 0 || position >= size) return { bytes: 0, size };
    const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, size - position), position);
    return { bytes: bytesRead, size };
  } finally {
    await handle.close();
  }
}

/** How much of each stream's end `outputTail` reads. */
const TAIL_BYTES = 8192;

/**
 * The last `n` lines an instance printed, for a crash's reason and `status`: its stdout's
 * last lines, then its stderr's (where a dying app says why), so the last line is stderr's
 * when it has one. The streams' order between each other is not kept. [] when nothing can
 * be read.
 */
export async function outputTail(provider: Provider, id: string, n: number): Promise<string[]> {
  const lines: string[] = [];
  for (const stream of ['stdout', 'stderr'] as const) {
    try {
      const { size } = await provider.readOutput(id, stream, 0, Buffer.alloc(0));
      const from = Math.max(0, size - TAIL_BYTES);
      const buffer = Buffer.alloc(size - from);
      const { bytes } = await provider.readOutput(id, stream, from, buffer);
      const text = buffer.toString('utf8', 0, bytes).split('\n');
      if (from > 0) text.shift(); // a partial first line
      lines.push(...text.filter((line) => line.trim() !== ''));
    } catch {
      // unreadable: nothing from this stream
    }
  }
  return lines.slice(-n);
}

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** The last `n` lines of a text file (reading at most its last 8 KiB); [] when it cannot be read. */
export function tailLines(file: string, n: number): string[] {
  if (!file) return [];
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const size = fstatSync(fd).size;
    const length = Math.min(size, 8192);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    const lines = buffer.toString('utf8').split('\n').filter((line) => line.trim() !== '');
    if (length < size) lines.shift(); // a partial first line
    return lines.slice(-n);
  } catch {
    return [];
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The shape of a generated tree of small files. */
export interface TreeShape {
  folders: number;
  filesPerFolder: number;
  minBytes: number;
  maxBytes: number;
  seed: number;
}

/** 100 folders × 100 files of 100–2000 bytes: 10,000 files, about 10 MB. */
export const DEFAULT_TREE: TreeShape = { folders: 100, filesPerFolder: 100, minBytes: 100, maxBytes: 2000, seed: 42 };

/** mulberry32: a tiny seeded PRNG, so the tree is the same bytes on every run and machine. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHABET = Buffer.from('abcdefghijklmnopqrstuvwxyz0123456789 \n');

/** The path (relative to the tree) of file `file` in folder `folder`. */
export function treeFile(folder: number, file: number): string {
  return join(`d${String(folder).padStart(3, '0')}`, `f${String(file).padStart(3, '0')}.txt`);
}

/** Writes the tree under `dir`; returns the number of files and bytes written. */
export async function writeTree(dir: string, shape: TreeShape = DEFAULT_TREE): Promise<{ files: number; bytes: number }> {
  const random = prng(shape.seed);
  let files = 0;
  let bytes = 0;
  for (let d = 0; d < shape.folders; d++) {
    await mkdir(join(dir, treeFile(d, 0), '..'), { recursive: true });
    for (let f = 0; f < shape.filesPerFolder; f++) {
      const size = shape.minBytes + Math.floor(random() * (shape.maxBytes - shape.minBytes + 1));
      const content = Buffer.allocUnsafe(size);
      for (let i = 0; i < size; i++) content[i] = ALPHABET[Math.floor(random() * ALPHABET.length)]!;
      await writeFile(join(dir, treeFile(d, f)), content, { mode: 0o644 });
      files++;
      bytes += size;
    }
  }
  return { files, bytes };
}

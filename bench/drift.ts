/**
 * The process provider's root-filesystem drift check against `sha256sum` over the same tree,
 * in one run: a full re-hash (every file read and hashed against the image's layers), a stat
 * pass (what runs every 10 s), and `find -type f -print0 | xargs -0 sha256sum` of the same
 * files. Two roots: examples/hello's (node + busybox: few, large files) and a tree of 10,000
 * small files. Each case alternates with sha256sum, who goes first flipping each run.
 *
 *   node --import tsx bench/drift.ts [--runs N]
 *
 * Needs bubblewrap's host tools as a bake of examples/hello does (ldd, busybox). Prints a
 * markdown report to stdout; progress on stderr.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { bake } from '../src/bake/baker.js';
import type { ImageSpec } from '../src/config/types.js';
import { checkRootfs, layerManifest, type StatBaseline } from '../src/providers/process/rootfs-manifest.js';
import { RootfsCache } from '../src/providers/process/rootfs-cache.js';
import { ImageStore } from '../src/store/image-store.js';
import { runChild } from './lib/child.js';
import { helloConfig } from './lib/hello-deploy.js';
import { formatMs, markdownTable, summarise } from './lib/stats.js';
import { writeTree } from './lib/tree.js';

const log = (line: string) => process.stderr.write(`${line}\n`);

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string' } } });
  const runs = Number(values.runs ?? 5);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: expected a positive whole number, got ${values.runs}`);
  const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const home = await mkdtemp(join(tmpdir(), 'imago-bench-drift-'));
  const store = await ImageStore.open(home);
  const startedAt = new Date();
  const load = loadavg()[0]!;
  try {
    const hello = helloConfig(join(repoRoot, 'examples', 'hello'), { replicas: 1 }).images.hello!;
    const treeDir = join(home, 'tree-context');
    const written = await writeTree(join(treeDir, 'tree'));
    const tree: ImageSpec = { ...hello, name: 'tree', context: treeDir, from: { kind: 'scratch' }, steps: [{ kind: 'copy', key: 'copy[0]', src: 'tree/', dest: '/data', exclude: [], mode: undefined, owner: { uid: 0, gid: 0 } }], entrypoint: ['/x'], cmd: undefined };
    log(`tree: ${written.files} files, ${written.bytes} bytes`);
    const rows: string[][] = [];
    for (const [name, spec] of [['examples/hello root (node, busybox, the app)', hello], ['10,000 small files (100 folders × 100)', tree]] as const) {
      const { digest } = await bake({ store, spec });
      const root = await new RootfsCache(store, join(home, 'rootfs')).ensure(digest);
      let t = performance.now();
      const manifest = await layerManifest(store, digest);
      const manifestMs = performance.now() - t;
      const files = [...manifest.values()].filter((e) => e.type === 'file');
      const bytes = files.reduce((sum, e) => sum + (e.size ?? 0), 0);
      log(`${name}: ${files.length} files, ${(bytes / 1e6).toFixed(1)} MB; manifest from the layers in ${formatMs(manifestMs)}`);
      const full: number[] = [];
      const stat: number[] = [];
      const sha: number[] = [];
      const baseline: StatBaseline = new Map();
      for (let run = 0; run < runs; run++) {
        const ours = async () => {
          t = performance.now();
          const check = await checkRootfs(root, manifest, { rehash: true, baseline });
          full.push(performance.now() - t);
          if (check.findings.length > 0) throw new Error(`expected no drift in a fresh root, got: ${check.findings.slice(0, 3).join('; ')}`);
          t = performance.now();
          const fast = await checkRootfs(root, manifest, { rehash: false, baseline });
          stat.push(performance.now() - t);
          if (fast.findings.length > 0) throw new Error(`expected no drift from the stat pass, got: ${fast.findings.slice(0, 3).join('; ')}`);
        };
        const theirs = async () => {
          const child = await runChild('/bin/sh', ['-c', 'find . -type f -print0 | xargs -0 sha256sum > /dev/null'], { cwd: root });
          if (child.code !== 0) throw new Error(`sha256sum failed: ${child.stderr}`);
          sha.push(child.ms);
        };
        if (run % 2 === 0) {
          await ours();
          await theirs();
        } else {
          await theirs();
          await ours();
        }
      }
      const f = summarise(full)!;
      const s = summarise(stat)!;
      const h = summarise(sha)!;
      const rate = (ms: number) => `${Math.round(files.length / (ms / 1000)).toLocaleString('en')} files/s, ${(bytes / 1e9 / (ms / 1000)).toFixed(2)} GB/s`;
      rows.push([name, `${files.length.toLocaleString('en')} / ${(bytes / 1e6).toFixed(1)} MB`, `${formatMs(f.median)} (${rate(f.median)})`, `${formatMs(s.median)}`, `${formatMs(h.median)} (${rate(h.median)})`, `${(h.median / f.median).toFixed(2)}×`]);
      log(`  full ${formatMs(f.median)}, stat ${formatMs(s.median)}, sha256sum ${formatMs(h.median)}`);
    }
    const cpu = cpus();
    process.stdout.write(
      [
        `### Drift check throughput, ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC`,
        '',
        `Command: \`node --import tsx bench/drift.ts --runs ${runs}\`. ${cpu.length} cores (${cpu[0]?.model.trim() ?? '?'}), Linux ${release()}, Node ${process.version}; load average ${load.toFixed(2)} at the start, ${loadavg()[0]!.toFixed(2)} at the end. Medians of ${runs}; the page cache is warm for both (the same files, read in turn).`,
        '',
        markdownTable(['root', 'files / bytes', 'imago full re-hash', 'imago stat pass', 'find … -print0 \\| xargs -0 sha256sum', 'sha256sum / imago (full)'], rows),
        '',
      ].join('\n'),
    );
  } finally {
    store.close();
    await rm(home, { recursive: true, force: true });
  }
}

main().catch((error: Error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error.message}\n`);
  process.exitCode = 1;
});

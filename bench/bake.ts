/**
 * imago bake vs docker build, on this machine, in one run: the hello example and a tree of
 * 10,000 small files, each cold (empty state), warm (nothing changed) and, for the tree,
 * after changing one file. imago and docker alternate within every repetition (who goes
 * first flips each time), so the machine's noise falls on both alike.
 *
 *   npm run bench -- --runs 5
 *
 * Writes a markdown table to stdout and to bench/results/bake-<date>.md; progress goes to stderr.
 */
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { HELLO, TREE, writeHelloContext, writeTreeContext } from './lib/contexts.js';
import { describeProbe, probeHandoffs } from './lib/handoff-probe.js';
import { DockerBench, DOCKER, type DockerBuilder, type DockerRun } from './lib/docker-runner.js';
import { prepareImago, type ImagoRun } from './lib/imago-runner.js';
import { formatMiB, formatMs, markdownTable, summarise } from './lib/stats.js';
import { treeFile } from './lib/tree.js';

const USAGE = `usage: npm run bench -- [--runs N] [--docker-builder buildkit|legacy]

  --runs N            repetitions of every case, for each tool (default 5)
  --docker-builder B  docker's builder: buildkit (DOCKER_BUILDKIT=1, default) or legacy (DOCKER_BUILDKIT=0)`;

/** The bench's options, checked. */
interface Options {
  runs: number;
  builder: DockerBuilder;
}

/** One measured case: the samples of both tools. */
interface Case {
  name: string;
  imago: ImagoRun[];
  docker: DockerRun[];
}

/** Parses the command line; a bad value fails with what was expected and what was given. */
function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({ args: argv, options: { runs: { type: 'string' }, 'docker-builder': { type: 'string' }, help: { type: 'boolean' } } });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const runs = Number(values.runs ?? 5);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: expected a positive integer, got "${values.runs}"`);
  const builder = values['docker-builder'] ?? 'buildkit';
  if (builder !== 'buildkit' && builder !== 'legacy') throw new Error(`--docker-builder: expected buildkit or legacy, got "${builder}"`);
  return { runs, builder };
}

/** Fails the bench when a run did not do what the case is about (e.g. a warm bake that rebuilt). */
function expect(ok: boolean, what: string, got: string): void {
  if (!ok) throw new Error(`expected ${what}, got ${got}`);
}

/** Checks an imago run's cache use: `cached` layers out of all. */
function expectImagoCached(run: ImagoRun, label: string, cached: (layers: number) => number): void {
  expect(run.cached === cached(run.layers), `${label}: imago with ${cached(run.layers)}/${run.layers} layers cached`, `${run.cached}/${run.layers}`);
}

/** Checks a docker run's cache use: how many instruction steps were CACHED. */
function expectDockerCached(run: DockerRun, label: string, cached: (steps: number) => number): void {
  const hits = run.steps.filter((s) => s.cached).length;
  expect(hits === cached(run.steps.length), `${label}: docker with ${cached(run.steps.length)}/${run.steps.length} steps cached`, `${hits}/${run.steps.length}`);
}

/** Runs imago and docker once each, in the given order, recording both. */
async function measurePair(target: Case, imagoFirst: boolean, imago: () => Promise<ImagoRun>, docker: () => Promise<DockerRun>): Promise<[ImagoRun, DockerRun]> {
  let i: ImagoRun | undefined;
  let d: DockerRun | undefined;
  if (imagoFirst) {
    i = await imago();
    d = await docker();
  } else {
    d = await docker();
    i = await imago();
  }
  target.imago.push(i);
  target.docker.push(d);
  return [i, d];
}

/** Median of a list, or NaN when empty. */
function median(values: number[]): number {
  return summarise(values)?.median ?? Number.NaN;
}

/** The results table: per case, median and min of both tools, their ratio and imago's peak RSS. */
function resultsTable(cases: Case[]): string {
  const rows = cases.map((c) => {
    const i = summarise(c.imago.map((r) => r.ms))!;
    const d = summarise(c.docker.map((r) => r.ms))!;
    const rss = c.imago.map((r) => r.maxRss).filter((n): n is number => n !== undefined);
    return [
      c.name,
      `${formatMs(i.median)} / ${formatMs(i.min)}`,
      `${formatMs(d.median)} / ${formatMs(d.min)}`,
      `${(d.median / i.median).toFixed(2)}×`,
      rss.length ? formatMiB(Math.max(...rss)) : 'n/a',
    ];
  });
  return markdownTable(['case', 'imago median / min', 'docker median / min', 'docker/imago (medians)', 'imago peak RSS (max)'], rows);
}

/** Every sample, in run order, so a reader can see the spread behind a median. */
function samplesTable(cases: Case[]): string {
  const list = (runs: Array<{ ms: number }>) => runs.map((r) => Math.round(r.ms)).join(', ');
  return markdownTable(['case', 'imago (ms)', 'docker (ms)'], cases.map((c) => [c.name, list(c.imago), list(c.docker)]));
}

/** Median time of each labelled step across runs, in first-seen order. */
function stepMedians(runs: Array<Array<{ label: string; ms: number | undefined }>>): Array<[string, number]> {
  const byLabel = new Map<string, number[]>();
  for (const steps of runs) for (const s of steps) if (s.ms !== undefined) byLabel.set(s.label, [...(byLabel.get(s.label) ?? []), s.ms]);
  return [...byLabel].map(([label, ms]) => [label, median(ms)]);
}

/** Where the time goes, per case: median per step from imago's events and from docker's BuildKit progress. */
function breakdown(cases: Case[], builder: DockerBuilder): string {
  const lines: string[] = [];
  for (const c of cases) {
    const imagoSteps = stepMedians(c.imago.map((r) => r.steps));
    const imagoOther = median(c.imago.map((r) => r.ms - r.steps.reduce((sum, s) => sum + s.ms, 0)));
    const parts = imagoSteps.filter(([, ms]) => ms > 0).map(([label, ms]) => `${label} ${formatMs(ms)}`);
    lines.push(`- **${c.name}**`);
    lines.push(`  - imago: ${[...parts, `outside the steps (process start, config, store, tags) ${formatMs(imagoOther)}`].join('; ')}`);
    if (builder === 'buildkit') {
      const dockerSteps = stepMedians(c.docker.map((r) => [...r.phases.filter((p) => /load build context/.test(p.label)), ...r.steps, ...r.phases.filter((p) => /exporting/.test(p.label))]));
      const counted = (r: DockerRun) => [...r.steps, ...r.phases].reduce((sum, s) => sum + (s.ms ?? 0), 0);
      const dockerOther = median(c.docker.map((r) => r.ms - counted(r)));
      const dparts = dockerSteps.map(([label, ms]) => `${label.replace(/^\[internal\] /, '')} ${formatMs(ms)}`);
      lines.push(`  - docker: ${[...dparts, `outside the steps (CLI, daemon, session) ${formatMs(dockerOther)}`].join('; ')}`);
    }
  }
  if (builder === 'buildkit') lines.push('', 'BuildKit reports step times to 0.1 s, so its small steps read as 0 ms and "outside the steps" can be slightly off (even negative).');
  return lines.join('\n');
}

/** Runs the whole bench and returns the report. */
async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const work = await mkdtemp(join(tmpdir(), 'imago-bench-'));
  const docker = new DockerBench(options.builder);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const notes: string[] = [];
  const startedAt = new Date();
  const loadAtStart = loadavg()[0]!;
  const started = Date.now();

  let cleaned: Promise<void> | undefined;
  const cleanup = () =>
    (cleaned ??= (async () => {
      log('cleaning up: docker images and cache records of this run, temp folders');
      for (const note of await docker.cleanup().catch((error: Error) => [`docker cleanup failed: ${error.message}`])) log(`  ${note}`);
      await rm(work, { recursive: true, force: true });
    })());
  process.once('SIGINT', () => {
    log('interrupted');
    void cleanup().finally(() => process.exit(130));
  });

  try {
    const dockerVersion = await docker.serverVersion();
    log(`preparing in ${work}`);
    const imago = await prepareImago(repoRoot, join(work, 'imago-build'));
    for (const note of imago.notes) log(`  ${note}`);
    notes.push(...imago.notes);

    let helloDir = join(work, 'hello-0');
    const host = await writeHelloContext(repoRoot, helloDir);
    log(`  hello context: hostroot/ with ${host.paths.length} host files (${formatMiB(host.bytes)}): ${host.paths.join(' ')}`);
    let treeDir = join(work, 'tree-0');
    const tree = await writeTreeContext(treeDir);
    log(`  tree context: ${tree.files} files, ${formatMiB(tree.bytes)}`);
    const probeBefore = describeProbe(await probeHandoffs(join(treeDir, 'tree'), tree.files), 'before the runs');
    log(`  ${probeBefore}`);

    const cases: Case[] = ['hello: cold', 'hello: warm (no change)', 'tree 10k: cold', 'tree 10k: warm (no change)', 'tree 10k: one file changed'].map((name) => ({ name, imago: [], docker: [] }));
    const [helloCold, helloWarm, treeCold, treeWarm, treeChanged] = cases as [Case, Case, Case, Case, Case];
    const changedFile = treeFile(50, 50);
    const startups: number[] = [];

    for (let rep = 1; rep <= options.runs; rep++) {
      const imagoFirst = rep % 2 === 1;
      // A new folder name each repetition: docker (BuildKit) keys its incremental context
      // transfer by the context's path, as imago keys its file-hash memo by path and home.
      const nextHello = join(work, `hello-${rep}`);
      await rename(helloDir, nextHello);
      helloDir = nextHello;
      const helloHome = join(work, `home-hello-${rep}`);
      const bakeHello = () => imago.bake({ home: helloHome, config: join(helloDir, 'imago.yaml'), image: HELLO.image });
      const buildHello = (noCache: boolean) => () => docker.build({ context: helloDir, tag: HELLO.tag, noCache });

      const [hi1, hd1] = await measurePair(helloCold, imagoFirst, bakeHello, buildHello(true));
      expectImagoCached(hi1, 'hello cold', () => 0);
      expectDockerCached(hd1, 'hello cold', () => 0);
      const [hi2, hd2] = await measurePair(helloWarm, imagoFirst, bakeHello, buildHello(false));
      expectImagoCached(hi2, 'hello warm', (n) => n);
      expectDockerCached(hd2, 'hello warm', (n) => n);
      if (rep === 1) notes.push(`image sizes (hello): imago ${formatMiB(hi1.size)} of layers, docker ${formatMiB(await docker.imageSize(hd1.imageId))} (docker image inspect)`);
      await rm(helloHome, { recursive: true, force: true });

      const nextTree = join(work, `tree-${rep}`);
      await rename(treeDir, nextTree);
      treeDir = nextTree;
      const treeHome = join(work, `home-tree-${rep}`);
      const bakeTree = () => imago.bake({ home: treeHome, config: join(treeDir, 'imago.yaml'), image: TREE.image });
      const buildTree = (noCache: boolean) => () => docker.build({ context: treeDir, tag: TREE.tag, noCache });

      const [ti1, td1] = await measurePair(treeCold, imagoFirst, bakeTree, buildTree(true));
      expectImagoCached(ti1, 'tree cold', () => 0);
      expectDockerCached(td1, 'tree cold', () => 0);
      const [ti2, td2] = await measurePair(treeWarm, imagoFirst, bakeTree, buildTree(false));
      expectImagoCached(ti2, 'tree warm', (n) => n);
      expectDockerCached(td2, 'tree warm', (n) => n);
      await writeFile(join(treeDir, 'tree', changedFile), `changed in repetition ${rep}\n`);
      const [ti3, td3] = await measurePair(treeChanged, imagoFirst, bakeTree, buildTree(false));
      expectImagoCached(ti3, 'tree one file changed', (n) => n - 1);
      expectDockerCached(td3, 'tree one file changed', (n) => n - 1);
      if (rep === 1) notes.push(`image sizes (tree): imago ${formatMiB(ti1.size)} of layers, docker ${formatMiB(await docker.imageSize(td1.imageId))} (docker image inspect)`);
      await rm(treeHome, { recursive: true, force: true });

      startups.push(await imago.startup());
      const show = (c: Case) => `${c.name.replace(/ \(no change\)/, '')} ${formatMs(c.imago.at(-1)!.ms)} vs ${formatMs(c.docker.at(-1)!.ms)}`;
      log(`run ${rep}/${options.runs} (${imagoFirst ? 'imago' : 'docker'} first), imago vs docker: ${cases.map(show).join(', ')}`);
    }

    const probeAfter = describeProbe(await probeHandoffs(join(treeDir, 'tree'), tree.files), 'after the runs');
    log(`  ${probeAfter}`);
    notes.push(probeBefore, probeAfter);
    const floor = imago.mode === 'cli' ? 'node bin/imago.js --version' : 'node -e 0';
    notes.push(`start-up floor of every imago run (\`${floor}\`): median ${formatMs(median(startups))}`);
    const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
    const cpu = cpus();
    const machine = `${cpu.length} cores (${cpu[0]?.model.trim() ?? 'unknown CPU'}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Linux ${release()}, Node ${process.version}, load average ${loadAtStart.toFixed(2)} at start and ${loadavg()[0]!.toFixed(2)} at end, docker ${dockerVersion} (${DOCKER}, ${options.builder === 'buildkit' ? 'BuildKit, DOCKER_BUILDKIT=1' : 'legacy builder, DOCKER_BUILDKIT=0'})`;
    const report = [
      `## imago bake vs docker build, ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC`,
      '',
      `Command: \`${command}\` (${options.runs} runs of each case per tool, interleaved, took ${formatMs(Date.now() - started)}).`,
      `Machine: ${machine}.`,
      '',
      resultsTable(cases),
      '',
      'Cold: imago with an empty home (no layer cache, no file-hash memo), docker `build --no-cache` from a context folder it has not seen.',
      'Warm: the same again with nothing changed (asserted: every layer/step cached). One file changed: warm, after rewriting one of the 10,000 files (asserted: the copy step rebuilt).',
      '',
      ...notes.map((note) => `- ${note}`),
      '',
      '### Where the time goes (median per step)',
      '',
      breakdown(cases, options.builder),
      '',
      '### Every sample, in run order',
      '',
      samplesTable(cases),
      '',
    ].join('\n');

    process.stdout.write(`${report}\n`);
    const resultsDir = join(repoRoot, 'bench', 'results');
    await mkdir(resultsDir, { recursive: true });
    const file = join(resultsDir, `bake-${startedAt.toISOString().slice(0, 16).replace(/:/g, '')}.md`);
    await writeFile(file, report);
    log(`wrote ${relative(process.cwd(), file)}`);
  } finally {
    await cleanup();
  }
}

main().catch((error: Error) => {
  process.stderr.write(`bench failed: ${error.message}\n`);
  process.exitCode = 1;
});

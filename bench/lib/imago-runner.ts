import { copyFile, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runChild, tail } from './child.js';

/** One step of a bake as the bake's events report it. */
export interface StepTime {
  label: string;
  ms: number;
  cached: boolean;
}

/** One timed imago bake, run in its own process. */
export interface ImagoRun {
  ms: number;
  layers: number;
  cached: number;
  steps: StepTime[];
  /** Bytes of the image's layers (uncompressed tar), as imago reports them. */
  size: number;
  /** Peak resident set of the imago process, in bytes. */
  maxRss: number | undefined;
}

/** How the bench runs imago: the real CLI, or (when the CLI does not start) the library. */
export type ImagoMode = 'cli' | 'library';

/** Runs imago bakes in child processes from a private build of the current sources. */
export interface ImagoRunner {
  mode: ImagoMode;
  /** Why the mode was chosen, and any problem the build reported. */
  notes: string[];
  bake(options: { home: string; config: string; image: string }): Promise<ImagoRun>;
  /** Times `imago --version` (CLI mode) or a bare `node` (library mode): the floor under every bake. */
  startup(): Promise<number>;
}

/** Records the process's peak RSS on exit (loaded with `node --import`; changes nothing else). */
const RSS_HOOK = `import { writeFileSync } from 'node:fs';
process.on('exit', () => {
  const out = process.env.IMAGO_BENCH_RSS_OUT;
  if (out) try { writeFileSync(out, String(process.resourceUsage().maxRSS * 1024)); } catch {}
});
`;

/** The library path: what \`imago bake\` does, minus the CLI (used only when the CLI does not start). */
const LIBRARY_DRIVER = `import { loadConfig } from './dist/config/load.js';
import { ImageStore } from './dist/store/image-store.js';
import { bake } from './dist/bake/baker.js';
const [home, file, image] = process.argv.slice(2);
const config = await loadConfig({ file });
const store = await ImageStore.open(home);
const steps = [];
try {
  const result = await bake({ store, spec: config.images[image], onEvent: (e) => {
    if (e.type === 'step-done') steps.push({ label: e.label, ms: e.ms, cached: e.cached });
  } });
  const size = result.layers.reduce((sum, l) => sum + l.size, 0);
  process.stdout.write(JSON.stringify({ layers: result.layers.length, cached: result.cacheHits, size, steps }) + '\\n');
} finally {
  store.close();
}
`;

/**
 * Compiles src/ into `dir` (so a concurrent \`npm run build\` cannot swap the code under a
 * running bench), then checks that \`imago --version\` starts. Falls back to the compiled
 * library when it does not, saying why.
 */
export async function prepareImago(repoRoot: string, dir: string): Promise<ImagoRunner> {
  const notes: string[] = [];
  await mkdir(join(dir, 'bin'), { recursive: true });
  const tsc = await runChild(process.execPath, [
    join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'),
    '-p', join(repoRoot, 'tsconfig.build.json'),
    '--outDir', join(dir, 'dist'),
    '--declaration', 'false',
    '--sourceMap', 'false',
  ]);
  if (tsc.code !== 0) {
    const errors = tsc.stdout.split('\n').filter((line) => /error TS\d+/.test(line));
    notes.push(`tsc reported ${errors.length} type error(s) in src/ (code emitted anyway), first: ${errors[0] ?? tail(tsc.stdout, 1)}`);
  }
  await copyFile(join(repoRoot, 'package.json'), join(dir, 'package.json'));
  await symlink(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
  await copyFile(join(repoRoot, 'bin', 'imago.js'), join(dir, 'bin', 'imago.js'));
  await writeFile(join(dir, 'rss-hook.mjs'), RSS_HOOK);
  await writeFile(join(dir, 'bake-driver.mjs'), LIBRARY_DRIVER);
  const hook = pathToFileURL(join(dir, 'rss-hook.mjs')).href;
  const cli = join(dir, 'bin', 'imago.js');

  const smoke = await runChild(process.execPath, [cli, '--version']);
  const mode: ImagoMode = smoke.code === 0 ? 'cli' : 'library';
  if (mode === 'cli') notes.push(`imago ran as the CLI (node bin/imago.js ${smoke.stdout.trim()}), one process per bake`);
  else {
    const why = smoke.stderr.split('\n').find((line) => /Error|error:/.test(line)) ?? tail(smoke.stderr, 1);
    notes.push(`the CLI did not start (${why.trim()}); imago ran as the compiled library (loadConfig + ImageStore.open + bake), one process per bake`);
  }

  const bake = async (options: { home: string; config: string; image: string }): Promise<ImagoRun> => {
    const rssFile = join(dirname(options.home), `${Math.random().toString(36).slice(2)}.rss`);
    const env = { ...process.env, IMAGO_BENCH_RSS_OUT: rssFile };
    const args =
      mode === 'cli'
        ? ['--import', hook, cli, '--home', options.home, '--config', options.config, 'bake', options.image]
        : ['--import', hook, join(dir, 'bake-driver.mjs'), options.home, options.config, options.image];
    const child = await runChild(process.execPath, args, { cwd: dirname(options.config), env });
    if (child.code !== 0) throw new Error(`imago bake ${options.image} failed with exit code ${child.code}:\n${tail(child.stderr || child.stdout)}`);
    const maxRss = await readFile(rssFile, 'utf8').then(Number, () => undefined);
    await rm(rssFile, { force: true });
    const parsed = mode === 'cli' ? parseCliOutput(child.stdout, child.stderr) : (JSON.parse(child.stdout) as Omit<ImagoRun, 'ms' | 'maxRss'>);
    return { ms: child.ms, maxRss, ...parsed };
  };
  const startup = async (): Promise<number> => {
    const child = await runChild(process.execPath, mode === 'cli' ? [cli, '--version'] : ['-e', '0']);
    if (child.code !== 0) throw new Error(`expected the start-up probe to succeed, got exit code ${child.code}: ${tail(child.stderr)}`);
    return child.ms;
  };
  return { mode, notes, bake, startup };
}

/** Reads `name:n sha256:… (98.9 MB, c/n layers cached, …)` from stdout and `[i/n] label: built … (850ms)` from stderr. */
export function parseCliOutput(stdout: string, stderr: string): Omit<ImagoRun, 'ms' | 'maxRss'> {
  const summary = /\((\d+(?:\.\d+)?) (B|kB|MB|GB), (\d+)\/(\d+) layers cached/.exec(stdout);
  if (!summary) throw new Error(`expected "(size, c/n layers cached" in the output of imago bake, got:\n${tail(stdout)}`);
  const size = Number(summary[1]) * ({ B: 1, kB: 1e3, MB: 1e6, GB: 1e9 } as Record<string, number>)[summary[2]!]!;
  const steps: StepTime[] = [];
  for (const line of stderr.split('\n')) {
    const m = /^\[\d+\/\d+\] (.+?): (cached|built|nothing to build).*\(([\dms.]+)\)$/.exec(line);
    if (m) steps.push({ label: m[1]!, cached: m[2] !== 'built', ms: parseDuration(m[3]!) });
  }
  return { layers: Number(summary[4]), cached: Number(summary[3]), size, steps };
}

/** Parses imago's human durations: `850ms`, `2.4s`, `1m05s`. */
function parseDuration(text: string): number {
  const m = /^(?:(\d+)m)?(?:(\d+(?:\.\d+)?)(ms|s))?$/.exec(text);
  if (!m) return Number.NaN;
  const minutes = Number(m[1] ?? 0) * 60_000;
  const rest = m[2] === undefined ? 0 : Number(m[2]) * (m[3] === 'ms' ? 1 : 1000);
  return minutes + rest;
}

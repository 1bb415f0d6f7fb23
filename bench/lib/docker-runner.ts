import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { runChild, tail } from './child.js';

/** Which docker builder the bench drives. */
export type DockerBuilder = 'buildkit' | 'legacy';

/** One Dockerfile instruction step as `docker build` reported it (ms only under BuildKit). */
export interface DockerStep {
  label: string;
  ms: number | undefined;
  cached: boolean;
}

/** One timed `docker build`. */
export interface DockerRun {
  ms: number;
  /** The instruction steps (COPY, RUN, WORKDIR …), FROM scratch excluded. */
  steps: DockerStep[];
  /** BuildKit's other work (`load build context`, `exporting to image`), with ms. */
  phases: DockerStep[];
  imageId: string;
}

/** The Debian docker CLI: it speaks to this dockerd's built-in BuildKit (the newer CLI would need buildx). */
export const DOCKER = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';

/**
 * Builds images with `docker build`, remembering every image and BuildKit cache record it
 * made so `cleanup` removes exactly those.
 */
export class DockerBench {
  private readonly images = new Set<string>();
  private readonly tags = new Set<string>();
  private cacheBefore: Set<string> | undefined;

  constructor(readonly builder: DockerBuilder) {}

  /** The docker server version; fails early when dockerd does not answer. */
  async serverVersion(): Promise<string> {
    const result = await runChild(DOCKER, ['version', '--format', '{{.Server.Version}}']);
    if (result.code !== 0) throw new Error(`failed to reach dockerd with '${DOCKER} version': ${tail(result.stderr)}`);
    this.cacheBefore = await this.buildCacheIds();
    return result.stdout.trim();
  }

  /** Runs one `docker build` of `context` (its Dockerfile) tagged `tag`. */
  async build(options: { context: string; tag: string; noCache: boolean }): Promise<DockerRun> {
    const iidFile = join(options.context, '..', `iid-${Math.random().toString(36).slice(2)}`);
    const args = ['build', '-t', options.tag, '--iidfile', iidFile];
    if (this.builder === 'buildkit') args.push('--progress=plain');
    if (options.noCache) args.push('--no-cache');
    args.push(options.context);
    const env = { ...process.env, DOCKER_BUILDKIT: this.builder === 'buildkit' ? '1' : '0' };
    this.tags.add(options.tag);
    const result = await runChild(DOCKER, args, { env });
    const output = result.stdout + result.stderr;
    if (result.code !== 0) throw new Error(`docker build of ${options.context} failed with exit code ${result.code}:\n${tail(output)}`);
    const imageId = (await readFile(iidFile, 'utf8')).trim();
    await rm(iidFile, { force: true });
    this.images.add(imageId);
    const parsed = this.builder === 'buildkit' ? parseBuildkit(output) : parseLegacy(output);
    return { ms: result.ms, imageId, ...parsed };
  }

  /** The size docker reports for an image, in bytes. */
  async imageSize(imageId: string): Promise<number> {
    const result = await runChild(DOCKER, ['image', 'inspect', '--format', '{{.Size}}', imageId]);
    return Number(result.stdout.trim());
  }

  /** Removes the tags and images this bench built, and the BuildKit cache records that appeared since it started. */
  async cleanup(): Promise<string[]> {
    const notes: string[] = [];
    for (const tag of this.tags) await runChild(DOCKER, ['rmi', tag]);
    const leftover = [...this.images];
    if (leftover.length) await runChild(DOCKER, ['rmi', ...leftover]);
    notes.push(`removed ${this.tags.size} tag(s) and ${this.images.size} image(s)`);
    if (this.builder === 'buildkit' && this.cacheBefore) {
      // A record can only go once the records built on it are gone: prune in passes until none is left.
      const mine = async () => [...(await this.buildCacheIds())].filter((id) => !this.cacheBefore!.has(id));
      let left = await mine();
      const found = left.length;
      for (let pass = 0; pass < 10 && left.length > 0; pass++) {
        for (const id of [...left].reverse()) await runChild(DOCKER, ['builder', 'prune', '-f', '--filter', `id=${id}`]);
        const next = await mine();
        if (next.length >= left.length) break;
        left = next;
      }
      notes.push(`pruned ${found - left.length} of ${found} BuildKit cache record(s) created during the run${left.length ? ` (left: ${left.join(' ')})` : ''}`);
    }
    this.tags.clear();
    this.images.clear();
    return notes;
  }

  private async buildCacheIds(): Promise<Set<string>> {
    const result = await runChild(DOCKER, ['system', 'df', '-v', '--format', '{{range .BuildCache}}{{.ID}} {{end}}']);
    return new Set(result.stdout.split(/\s+/).filter(Boolean));
  }
}

/** Reads BuildKit's plain progress: `#5 [2/3] COPY tree/ /data`, then `#5 DONE 1.2s` or `#5 CACHED`. */
export function parseBuildkit(output: string): Pick<DockerRun, 'steps' | 'phases'> {
  const vertices = new Map<string, DockerStep>();
  for (const line of output.split('\n')) {
    const named = /^#(\d+) (\[.+)$/.exec(line);
    if (named && !vertices.has(named[1]!)) vertices.set(named[1]!, { label: named[2]!, ms: undefined, cached: false });
    const other = /^#(\d+) (exporting to image)$/.exec(line);
    if (other && !vertices.has(other[1]!)) vertices.set(other[1]!, { label: other[2]!, ms: undefined, cached: false });
    const done = /^#(\d+) DONE (\d+(?:\.\d+)?)s$/.exec(line);
    if (done && vertices.has(done[1]!)) vertices.get(done[1]!)!.ms = Number(done[2]) * 1000;
    const cached = /^#(\d+) CACHED$/.exec(line);
    if (cached && vertices.has(cached[1]!)) vertices.get(cached[1]!)!.cached = true;
  }
  const all = [...vertices.values()];
  const isStep = (v: DockerStep) => /^\[\d+\/\d+\]/.test(v.label);
  return { steps: all.filter(isStep), phases: all.filter((v) => !isStep(v)) };
}

/** Reads the legacy builder's output: `Step 2/9 : COPY …`, then ` ---> Using cache` when cached. */
export function parseLegacy(output: string): Pick<DockerRun, 'steps' | 'phases'> {
  const steps: DockerStep[] = [];
  for (const line of output.split('\n')) {
    const step = /^Step \d+\/\d+ : (.+)$/.exec(line);
    if (step) steps.push({ label: step[1]!, ms: undefined, cached: false });
    else if (/Using cache/.test(line) && steps.length) steps[steps.length - 1]!.cached = true;
  }
  return { steps: steps.filter((s) => !/^FROM /i.test(s.label)), phases: [] };
}

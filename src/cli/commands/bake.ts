import type { Command } from 'commander';
import type { BakeResult } from '../../bake/baker.js';
import { ConfigError } from '../../errors.js';
import { shortDigest } from '../../oci/digest.js';
import { parseImageRef } from '../../oci/reference.js';
import { bakeProgress } from '../bake-progress.js';
import { printJson, readConfig, withStore, type GlobalOptions } from '../context.js';
import { formatBytes, formatMs } from '../format.js';

/** `imago bake [names...]`: bakes images declared in the config. */
export function registerBake(program: Command): void {
  program
    .command('bake')
    .description('bake images from the config (all of them when no name is given)')
    .argument('[names...]', 'images to bake')
    .option('-t, --tag <tag>', 'an extra tag for each image asked for (`1.4`, or `name:1.4` with one image); repeatable', collect, [])
    .option('--no-cache', 'rebuild every layer')
    .option('--json', 'print the results as JSON')
    .option('-q, --quiet', 'print only the results')
    .action(async (names: string[], opts: { tag: string[]; cache: boolean; json?: boolean; quiet?: boolean }, cmd: Command) => {
      const global = cmd.optsWithGlobals<GlobalOptions>();
      const config = await readConfig(global);
      const [{ bake }, { bakeOrder }] = await Promise.all([import('../../bake/baker.js'), import('../../bake/bake-order.js')]);
      const specs = bakeOrder(config, names);
      // Extra tags go to the images asked for, never to bases baked along the way.
      const asked = new Set(names.length > 0 ? names : Object.keys(config.images));
      checkTags(opts.tag, asked.size);
      const results: BakeResult[] = await withStore(global, async (store) => {
        const out: BakeResult[] = [];
        for (const spec of specs) {
          const result = await bake({
            store,
            spec,
            tags: asked.has(spec.name) ? opts.tag : [],
            noCache: !opts.cache,
            onEvent: bakeProgress(process.stderr, { quiet: opts.quiet || opts.json }),
          });
          out.push(result);
          if (!opts.json) {
            const size = result.layers.reduce((sum, l) => sum + l.size, 0);
            process.stdout.write(
              `${result.version} ${result.digest} (${formatBytes(size)}, ${result.cacheHits}/${result.layers.length} layers cached, ${formatMs(result.ms)})${result.newVersion ? '' : ' unchanged'}\n`,
            );
          }
        }
        return out;
      });
      if (opts.json) printJson(results);
      else if (results.length > 1) process.stdout.write(`baked ${results.length} images: ${results.map((r) => `${r.name}@${shortDigest(r.digest)}`).join(', ')}\n`);
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Checks `--tag` values before any work: each must parse, and a full name:tag fits one image only. */
function checkTags(tags: string[], images: number): void {
  for (const tag of tags) {
    const full = tag.includes(':');
    const ref = parseImageRef(full ? tag : `x:${tag}`);
    if ('error' in ref || ref.kind !== 'tag') {
      throw new ConfigError(`--tag: expected a tag like "1.4" or "web:1.4", got "${tag}"${'error' in ref ? ` (${ref.error})` : ''}`);
    }
    if (full && images > 1) throw new ConfigError(`--tag: "${tag}" names one image, but ${images} are being baked: name one image, or give a bare tag like "1.4"`);
  }
}

import type { ImageSpec, ImagoConfig } from '../config/types.js';
import { ConfigError } from '../errors.js';
import { parseImageRef } from '../oci/reference.js';

/**
 * The images to bake, in an order where an image whose `from` names another image of the
 * same config comes after it. No names means every image. Unknown names and cycles are errors.
 */
export function bakeOrder(config: ImagoConfig, names: string[]): ImageSpec[] {
  const all = Object.keys(config.images);
  if (all.length === 0) throw new ConfigError(`no images are declared: add an "images" section`, { file: config.file });
  for (const name of names) {
    if (!config.images[name]) throw new ConfigError(`unknown image "${name}": expected one of ${all.join(', ')}`, { file: config.file });
  }
  const wanted = names.length > 0 ? names : all;
  const order: ImageSpec[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, path: string[]) => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') {
      throw new ConfigError(`images.${name}.from: images build on each other in a cycle: ${[...path, name].join(' → ')}`, { file: config.file });
    }
    state.set(name, 'visiting');
    const spec = config.images[name]!;
    if (spec.from.kind === 'image') {
      const ref = parseImageRef(spec.from.ref);
      // Only `name` or `name:latest` means "the image this config bakes"; other tags name stored images.
      if (!('error' in ref) && ref.kind === 'tag' && ref.tag === 'latest' && ref.name !== name && config.images[ref.name]) {
        visit(ref.name, [...path, name]);
      }
    }
    state.set(name, 'done');
    order.push(spec);
  };
  for (const name of wanted) visit(name, []);
  return order;
}

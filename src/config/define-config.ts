import type { RawConfig } from './schema.js';

/**
 * Types an imago.config.ts: returns its argument unchanged, so an editor completes and checks it.
 *
 * @example
 * import { defineConfig } from 'imago';
 * export default defineConfig({ images: { web: { from: { host: 'node' }, copy: [{ src: 'app/', dest: '/app' }] } } });
 */
export function defineConfig(config: RawConfig): RawConfig {
  return config;
}

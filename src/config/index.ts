/** The configuration layer: find, read, validate and normalise an imago config. */
export { defineConfig } from './define-config.js';
export { parseDuration } from './duration.js';
export { CONFIG_FILE_NAMES, findConfigFile, loadConfig } from './load.js';
export { normaliseConfig } from './normalise.js';
export type { RawConfig } from './schema.js';
export type * from './types.js';

import { readFileSync } from 'node:fs';

/** imago's own version, read once from package.json. */
export const IMAGO_VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

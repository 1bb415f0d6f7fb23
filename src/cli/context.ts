import type { ImagoConfig } from '../config/types.js';
import { resolveHome } from '../store/home.js';
import type { ImageStore } from '../store/image-store.js';

// Commands load what they use when they run, so `imago --help` and light commands start fast.

/** Options every command accepts. */
export interface GlobalOptions {
  home?: string;
  config?: string;
  verbose?: boolean;
}

/** Opens the image store named by the global options, runs `fn`, and closes it. */
export async function withStore<T>(options: GlobalOptions, fn: (store: ImageStore) => Promise<T>): Promise<T> {
  const { ImageStore } = await import('../store/image-store.js');
  const store = await ImageStore.open(resolveHome(options.home));
  try {
    return await fn(store);
  } finally {
    store.close();
  }
}

/** Loads the project's config: `--config`, else the first config file in the current folder. */
export async function readConfig(options: GlobalOptions): Promise<ImagoConfig> {
  const { loadConfig } = await import('../config/load.js');
  return loadConfig(options.config ? { file: options.config } : { cwd: process.cwd() });
}

/** Writes a value as JSON on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

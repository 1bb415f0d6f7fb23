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

/**
 * The environment a command that needs no config goes to: `--env`, else the config's default
 * environment when there is a config (`--config`, or one in the current folder) that declares
 * environments, else undefined (the server's home environment). A config that cannot be read
 * is an error saying to name the environment, never a silent guess.
 */
export async function environmentOf(options: GlobalOptions, given: string | undefined): Promise<string | undefined> {
  const { checkEnvironmentName } = await import('../config/environments.js');
  const { ConfigError } = await import('../errors.js');
  if (given !== undefined) return checkEnvironmentName(given, '--env');
  const { findConfigFile, loadConfig } = await import('../config/load.js');
  if (!options.config && !findConfigFile(process.cwd())) return undefined;
  try {
    return (await loadConfig(options.config ? { file: options.config } : { cwd: process.cwd() })).defaultEnvironment;
  } catch (error) {
    throw new ConfigError(`cannot read the config for its default environment (${(error as Error).message}): name the environment with --env`, { cause: error });
  }
}

/** Writes a value as JSON on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

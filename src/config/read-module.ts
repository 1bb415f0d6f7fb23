import { ConfigError, reasonOf } from '../errors.js';

/** How long a config module's default export may take to resolve. */
const LOAD_TIMEOUT_MS = 30_000;

/** Resolves as `promise` does, or fails with a ConfigError after `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, file: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ConfigError(`the default export did not resolve within ${ms / 1000}s`, { file })), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Imports a TypeScript or JavaScript config module and returns its default export,
 * calling it (and awaiting the result) when it is a function.
 */
export async function importConfigModule(file: string): Promise<unknown> {
  const { createJiti } = await import('jiti'); // loaded only for TS/JS configs: it is large
  const jiti = createJiti(import.meta.url, { moduleCache: false });
  let exported: unknown;
  try {
    const module = (await jiti.import(file)) as Record<string, unknown> | undefined;
    // jiti answers `.default` with the whole namespace when there is none, so ask for an own key.
    exported = module && Object.hasOwn(module, 'default') ? module.default : undefined;
    if (exported === undefined) {
      throw new ConfigError('expected a default export (the config, or a function returning it), got nothing', { file });
    }
    const value = typeof exported === 'function' ? (exported as () => unknown)() : exported;
    return await withTimeout(Promise.resolve(value), LOAD_TIMEOUT_MS, file);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`failed to load config module: ${reasonOf(error)}`, { file, cause: error });
  }
}

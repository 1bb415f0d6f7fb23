import { ConfigError, reasonOf } from '../errors.js';

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
    return typeof exported === 'function' ? await (exported as () => unknown)() : exported;
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`failed to load config module: ${reasonOf(error)}`, { file, cause: error });
  }
}

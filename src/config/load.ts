import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { ConfigError, reasonOf } from '../errors.js';
import { normaliseConfig } from './normalise.js';
import { importConfigModule } from './read-module.js';
import { parseYamlConfig } from './read-yaml.js';
import type { ImagoConfig } from './types.js';

/** The config file names looked for, in order of preference. */
export const CONFIG_FILE_NAMES = [
  'imago.config.ts',
  'imago.config.mts',
  'imago.config.js',
  'imago.config.mjs',
  'imago.yaml',
  'imago.yml',
] as const;

const YAML_EXTENSIONS = new Set(['.yaml', '.yml']);

/** Finds the config file in `dir` (see CONFIG_FILE_NAMES), or undefined when there is none. */
export function findConfigFile(dir: string): string | undefined {
  for (const name of CONFIG_FILE_NAMES) {
    const file = join(resolve(dir), name);
    if (existsSync(file)) return file;
  }
  return undefined;
}

/**
 * Loads, validates and normalises the config: `file` when given, else the first
 * config file found in `cwd` (default: the process's working directory).
 *
 * @example const config = await loadConfig({ cwd: 'examples/hello' });
 */
export async function loadConfig(options: { file?: string; cwd?: string } = {}): Promise<ImagoConfig> {
  return (await loadConfigSource(options)).config;
}

/**
 * Loads the config as loadConfig does, and also returns it as written (the raw value, YAML
 * merge keys resolved): what a client sends the server, which normalises it itself.
 */
export async function loadConfigSource(options: { file?: string; cwd?: string } = {}): Promise<{ config: ImagoConfig; raw: Record<string, unknown> }> {
  const cwd = resolve(options.cwd ?? process.cwd());
  let file = options.file ? resolve(cwd, options.file) : findConfigFile(cwd);
  // --config may name the project's folder: look for the config file in it.
  if (file && statSync(file, { throwIfNoEntry: false })?.isDirectory()) {
    const dir = file;
    file = findConfigFile(dir);
    if (!file) throw new ConfigError(`no config file found in '${dir}' (looked for ${CONFIG_FILE_NAMES.join(', ')})`);
  }
  if (!file) {
    throw new ConfigError(`no config file found in '${cwd}' (looked for ${CONFIG_FILE_NAMES.join(', ')})`);
  }
  const raw = await readRawConfig(file);
  const config = normaliseConfig(raw, file);
  return { config, raw: (raw ?? {}) as Record<string, unknown> };
}

/** Reads a config file to its raw value: YAML by extension, anything else as a module. */
async function readRawConfig(file: string): Promise<unknown> {
  if (!YAML_EXTENSIONS.has(extname(file))) {
    if (!existsSync(file)) throw new ConfigError(`failed to read config file '${file}': no such file`);
    return importConfigModule(file);
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : reasonOf(error);
    throw new ConfigError(`failed to read config file '${file}': ${reason}`, { cause: error });
  }
  return parseYamlConfig(text, file);
}

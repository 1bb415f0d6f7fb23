import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeFileOnce } from '../../util/write-once.js';

/**
 * The id that sets this imago home's containers, volumes and images apart from anything
 * else on the same engine (another home, another tool): 12 hex digits, made once and kept in
 * `<home>/docker/scope`. Every container carries it as the `imago.scope` label.
 */
export async function dockerScope(home: string): Promise<string> {
  const file = join(home, 'docker', 'scope');
  const existing = (await readFile(file, 'utf8').catch(() => '')).trim();
  if (/^[0-9a-f]{12}$/.test(existing)) return existing;
  await mkdir(dirname(file), { recursive: true });
  const fresh = randomBytes(6).toString('hex');
  // The file appears with its content or not at all, so a reader racing the maker never sees it empty.
  if (writeFileOnce(file, `${fresh}\n`, 0o644)) return fresh;
  // Another process made it first: theirs is the one.
  const theirs = (await readFile(file, 'utf8')).trim();
  if (!/^[0-9a-f]{12}$/.test(theirs)) throw new Error(`${file}: expected 12 hex digits, got '${theirs.slice(0, 40)}'`);
  return theirs;
}

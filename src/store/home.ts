import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * The state directory: `--home`, else `$IMAGO_HOME`, else `~/.imago`.
 * It holds the image store (an OCI layout), the state database and logs.
 */
export function resolveHome(explicit?: string): string {
  if (explicit) return resolve(explicit);
  if (process.env.IMAGO_HOME) return resolve(process.env.IMAGO_HOME);
  return join(homedir(), '.imago');
}

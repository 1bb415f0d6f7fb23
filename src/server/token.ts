import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Where the API token lives in the state folder. */
export function tokenPath(home: string): string {
  return join(home, 'api-token');
}

/**
 * The API's bearer token: read from `<home>/api-token`, or created there at first start
 * (32 random bytes, hex, file mode 0600). Only the server's user can read it.
 */
export async function ensureToken(home: string): Promise<string> {
  const file = tokenPath(home);
  const existing = await readFile(file, 'utf8').catch(() => undefined);
  if (existing && /^[0-9a-f]{64}$/.test(existing.trim())) return existing.trim();
  await mkdir(home, { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('hex');
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return token;
}

/** The token an Authorization header carries (`Bearer <token>`), or '' for none. */
export function bearerOf(header: string | undefined): string {
  return /^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1] ?? '';
}

/** True when an Authorization header carries `token` (compared in constant time). */
export function authorized(header: string | undefined, token: string): boolean {
  const presented = bearerOf(header);
  const a = Buffer.from(presented);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

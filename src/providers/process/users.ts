import { lstat, readFile } from 'node:fs/promises';
import { ProviderError } from '../../errors.js';
import { resolveInRoot } from '../../oci/safe-path.js';

/**
 * The numeric user and group an image runs as: `uid`, `uid:gid`, or a name (or `name:group`)
 * looked up in the image's own /etc/passwd and /etc/group. No user means root (which, in the
 * sandbox's user namespace, holds no host capability).
 */
export async function resolveUser(root: string, user: string | undefined): Promise<{ uid: number; gid: number }> {
  if (!user) return { uid: 0, gid: 0 };
  const [who, group] = user.split(':') as [string, string | undefined];
  const uid = /^\d+$/.test(who) ? Number(who) : await lookup(root, 'passwd', who, 2);
  let gid: number;
  if (group !== undefined) gid = /^\d+$/.test(group) ? Number(group) : await lookup(root, 'group', group, 2);
  else gid = /^\d+$/.test(who) ? uid : await lookup(root, 'passwd', who, 3);
  return { uid, gid };
}

async function lookup(root: string, file: 'passwd' | 'group', name: string, field: number): Promise<number> {
  // Resolved inside the image, and read only when it is a plain file: never a host file through a link.
  const path = await resolveInRoot(root, `etc/${file}`, false).catch(() => undefined);
  const info = path ? await lstat(path).catch(() => undefined) : undefined;
  const text = path && info?.isFile() ? await readFile(path, 'utf8') : '';
  for (const line of text.split('\n')) {
    const parts = line.split(':');
    if (parts[0] === name && /^\d+$/.test(parts[field] ?? '')) return Number(parts[field]);
  }
  throw new ProviderError(`the image's user '${name}' is not in its /etc/${file}: use a numeric uid:gid`);
}

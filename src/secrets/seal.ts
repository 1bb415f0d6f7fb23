/**
 * Secrets at rest: AES-256-GCM (node:crypto) under one key, each value sealed with a fresh
 * 96-bit IV and bound to its place (`env/name/version` as additional data), so a sealed value
 * copied to another row does not open. The key is `$IMAGO_SECRETS_KEY_FILE` when set (a team
 * keeps it elsewhere: a mounted secret, a hardware-backed file), else `<home>/secrets.key`,
 * made at first use with mode 0600.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImagoError, reasonOf } from '../errors.js';
import { writeFileOnce } from '../util/write-once.js';

/** A sealed value as stored. */
export interface Sealed {
  iv: Buffer;
  data: Buffer;
  tag: Buffer;
}

/** Where the secrets key is: the environment's file, else the state folder's. */
export function secretsKeyPath(home: string): string {
  return process.env.IMAGO_SECRETS_KEY_FILE || join(home, 'secrets.key');
}

/**
 * The 32-byte secrets key, as 64 hex digits in its file. The state folder's is made at first
 * use (written whole or not at all); one named by `$IMAGO_SECRETS_KEY_FILE` must exist.
 */
export function secretsKey(home: string): Buffer {
  const file = secretsKeyPath(home);
  if (!existsSync(file)) {
    if (process.env.IMAGO_SECRETS_KEY_FILE) throw new ImagoError(`IMAGO_SECRETS_KEY_FILE names ${file}, which does not exist: make one with \`openssl rand -hex 32 > ${file}\``, { exitCode: 2 });
    mkdirSync(home, { recursive: true, mode: 0o700 });
    writeFileOnce(file, `${randomBytes(32).toString('hex')}\n`, 0o600);
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (error) {
    throw new ImagoError(`cannot read the secrets key ${file}: ${reasonOf(error)}`, { cause: error });
  }
  if (!/^[0-9a-f]{64}$/i.test(text)) throw new ImagoError(`the secrets key ${file} is not 64 hex digits (32 bytes): make one with \`openssl rand -hex 32\``, { exitCode: 2 });
  return Buffer.from(text, 'hex');
}

/** Seals `plaintext` for its place `aad`. */
export function seal(key: Buffer, plaintext: Buffer, aad: string): Sealed {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad));
  const data = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv, data, tag: cipher.getAuthTag() };
}

/** Opens a sealed value for its place `aad`; a wrong key, place or a changed byte is an error. */
export function unseal(key: Buffer, sealed: Sealed, aad: string): Buffer {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.iv);
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(sealed.tag);
    return Buffer.concat([decipher.update(sealed.data), decipher.final()]);
  } catch (error) {
    throw new ImagoError(`secret ${aad} does not open: a different secrets key (see IMAGO_SECRETS_KEY_FILE), or the stored value was changed`, { cause: error });
  }
}

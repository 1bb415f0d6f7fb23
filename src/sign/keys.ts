import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImagoError, reasonOf } from '../errors.js';
import { writeFileOnce } from '../util/write-once.js';
import { keyIdOf } from './dsse.js';

/** The state folder's signing key pair: `<home>/keys/signing.key` (PKCS#8 PEM, 0600) and `signing.pub` (SPKI PEM). */
export function signingKeyPaths(home: string): { privateKey: string; publicKey: string } {
  return { privateKey: join(home, 'keys', 'signing.key'), publicKey: join(home, 'keys', 'signing.pub') };
}

/**
 * The state folder's Ed25519 signing key, made at first use (the private key mode 0600,
 * written whole or not at all). Every bake signs its provenance with it.
 */
export function ensureSigningKey(home: string): { privateKey: KeyObject; publicKey: KeyObject; keyid: string } {
  const paths = signingKeyPaths(home);
  if (!existsSync(paths.privateKey)) {
    mkdirSync(join(home, 'keys'), { recursive: true, mode: 0o700 });
    // Of two bakes making the key at once, the first one's is the key.
    writeFileOnce(paths.privateKey, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), 0o600);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(readFileSync(paths.privateKey));
  } catch (error) {
    throw new ImagoError(`cannot read the signing key ${paths.privateKey}: ${reasonOf(error)}`, { cause: error });
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new ImagoError(`the signing key ${paths.privateKey} is ${privateKey.asymmetricKeyType}, expected ed25519`);
  const publicKey = createPublicKey(privateKey);
  const pem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  if (!existsSync(paths.publicKey) || readFileSync(paths.publicKey, 'utf8') !== pem) writeFileSync(paths.publicKey, pem, { mode: 0o644 });
  return { privateKey, publicKey, keyid: keyIdOf(publicKey) };
}

/** An Ed25519 public key from PEM text (`what` names it in errors: a file, a config key). */
export function parsePublicKey(pem: string, what: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (error) {
    throw new ImagoError(`${what}: not a PEM public key (${reasonOf(error)})`, { cause: error, exitCode: 2 });
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new ImagoError(`${what}: a ${key.asymmetricKeyType} key, expected ed25519`, { exitCode: 2 });
  return key;
}

import picomatch from 'picomatch';

/**
 * File names that usually hold secrets. A `copy` that would take one of these along
 * with other files is refused; naming the file itself as a copy's `src` bakes it on purpose.
 */
export const SECRET_PATTERNS = [
  '.env',
  '.env.*',
  '*.pem',
  '*.key',
  '*.p12',
  '*.pfx',
  '*.jks',
  '*.keystore',
  'id_rsa',
  'id_dsa',
  'id_ecdsa',
  'id_ed25519',
  '.npmrc',
  '.pypirc',
  '.netrc',
  '.git-credentials',
  '.htpasswd',
  'credentials.json',
  'service-account*.json',
  '*.kdbx',
];

/** Example and template files that look like secrets but are meant to be shared. */
const SHAREABLE = ['.env.example', '.env.sample', '.env.template', '.env.dist'];

const isSecretName = picomatch(SECRET_PATTERNS, { dot: true });

/** True when a file's base name looks like a secret. */
export function looksSecret(basename: string): boolean {
  return !SHAREABLE.includes(basename) && isSecretName(basename);
}

import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { RouterError } from '../errors.js';

/** A router's certificate chain and key, read and checked. */
export interface TlsPair {
  /** PEM text of the certificate chain (leaf first). */
  cert: string;
  /** PEM text of the private key. */
  key: string;
  /** When the leaf certificate stops being valid. */
  notAfter: Date;
}

/**
 * Reads a service's TLS files and checks them before anything uses them: both readable, the
 * certificate a PEM X.509 certificate, the key a PEM private key, and the key the
 * certificate's. Each failure is a RouterError (bad input) naming the file and what is wrong.
 */
export function readTlsPair(service: string, files: { cert: string; key: string }): TlsPair {
  const read = (what: string, path: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      throw new RouterError(`service '${service}': cannot read the TLS ${what} file '${path}': ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error, badInput: true });
    }
  };
  const cert = read('certificate', files.cert);
  const key = read('key', files.key);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (error) {
    throw new RouterError(`service '${service}': the TLS certificate file '${files.cert}' holds no PEM certificate (${(error as Error).message})`, { cause: error, badInput: true });
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    throw new RouterError(`service '${service}': the TLS key file '${files.key}' holds no PEM private key (${(error as Error).message})`, { cause: error, badInput: true });
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new RouterError(`service '${service}': the TLS key file '${files.key}' does not match the certificate in '${files.cert}'`, { badInput: true });
  }
  return { cert, key, notAfter: new Date(x509.validTo) };
}

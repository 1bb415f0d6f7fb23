/**
 * DSSE (Dead Simple Signing Envelope, v1): a payload, its type, and signatures over both,
 * each made over the pre-authentication encoding PAE(type, payload) so a signature can never
 * be read as one over another type. Ed25519 keys, node:crypto.
 */
import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

/** The payload type of an in-toto statement. */
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

/** A DSSE envelope as JSON carries it: payload and signatures in base64. */
export interface Envelope {
  payloadType: string;
  payload: string;
  signatures: Array<{ keyid: string; sig: string }>;
}

/** PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths in bytes, in ASCII decimal. */
export function pae(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

/** A key's id: the sha256 of its public key (SubjectPublicKeyInfo, DER), in hex. */
export function keyIdOf(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
}

/** Signs `payload` of `payloadType` with an Ed25519 private key: an envelope with one signature. */
export function signEnvelope(payload: Buffer, payloadType: string, privateKey: KeyObject): Envelope {
  const sig = sign(null, pae(payloadType, payload), privateKey);
  return { payloadType, payload: payload.toString('base64'), signatures: [{ keyid: keyIdOf(privateKey), sig: sig.toString('base64') }] };
}

/** How an envelope checked against trusted keys: the key that verified it and the payload, or why none did. */
export type EnvelopeCheck = { ok: true; keyid: string; payload: Buffer } | { ok: false; reason: 'unknown-key' | 'bad-signature' | 'malformed'; message: string };

/**
 * Verifies an envelope against `keys` (public keys): it holds when one signature by one of
 * them verifies over PAE(type, payload). A signature by a key not among them is
 * `unknown-key`; one by a trusted key that does not verify (the payload or the signature was
 * changed) is `bad-signature`.
 */
export function verifyEnvelope(envelope: unknown, keys: KeyObject[]): EnvelopeCheck {
  const e = envelope as Partial<Envelope> | undefined;
  if (!e || typeof e.payloadType !== 'string' || typeof e.payload !== 'string' || !Array.isArray(e.signatures) || e.signatures.length === 0) {
    return { ok: false, reason: 'malformed', message: 'the envelope is not a DSSE envelope (payloadType, payload, signatures)' };
  }
  const payload = Buffer.from(e.payload, 'base64');
  const message = pae(e.payloadType, payload);
  const trusted = new Map(keys.map((k) => [keyIdOf(k), k]));
  let known = false;
  for (const s of e.signatures) {
    if (typeof s?.sig !== 'string') continue;
    const sig = Buffer.from(s.sig, 'base64');
    // The keyid is a hint, not signed: a signature under a missing or other keyid is tried with every trusted key.
    const named = trusted.get(String(s.keyid));
    if (named) known = true;
    for (const [keyid, key] of named ? [[String(s.keyid), named] as const] : [...trusted]) {
      if (verify(null, message, key, sig)) return { ok: true, keyid, payload };
    }
  }
  if (known) return { ok: false, reason: 'bad-signature', message: 'the signature by a trusted key does not verify: the provenance or its signature was changed after signing' };
  const by = e.signatures.map((s) => String(s?.keyid).slice(0, 16)).join(', ');
  return { ok: false, reason: 'unknown-key', message: `signed by key ${by}, which is not among the ${keys.length} trusted key(s)` };
}

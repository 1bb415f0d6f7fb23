/**
 * Signatures of images, kept in the image store as OCI artifacts that refer to the image: a
 * manifest whose `subject` is the image's manifest, `artifactType` the DSSE envelope's media
 * type, an empty config, and the envelope as its one layer. The `signatures` table lists them
 * by subject, so gc keeps an image's signatures with it and an export carries them.
 */
import type { KeyObject } from 'node:crypto';
import { sha256, type Digest } from '../oci/digest.js';
import { MediaType, type Descriptor } from '../oci/types.js';
import type { ImageStore } from '../store/image-store.js';
import { IN_TOTO_PAYLOAD_TYPE, signEnvelope, verifyEnvelope, type Envelope } from './dsse.js';
import { SLSA_PROVENANCE, STATEMENT_TYPE, subjectsOf } from './provenance.js';

/** The media type of a DSSE envelope, as an artifact's type and its layer's. */
export const ENVELOPE_MEDIA_TYPE = 'application/vnd.dsse.envelope.v1+json';

/** OCI's empty descriptor: the config of an artifact that has none (`{}`). */
export const EMPTY_CONFIG: Descriptor = { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256('{}'), size: 2 };

/** One stored signature of an image. */
export interface StoredSignature {
  /** The artifact manifest's digest. */
  manifest: Digest;
  subject: Digest;
  keyid: string;
  createdAt: string;
}

/**
 * Signs `statement` (an in-toto statement about `subject`) with `privateKey` and stores the
 * envelope as an artifact referring to `subject`. A subject this key signed before is left
 * as it is (a rebake of the same digest): returns the existing signature.
 */
export async function signImage(store: ImageStore, subject: Digest, statement: Record<string, unknown>, key: { privateKey: KeyObject; keyid: string }): Promise<StoredSignature> {
  const existing = signaturesOf(store, subject).find((s) => s.keyid === key.keyid);
  if (existing) return existing;
  return storeEnvelope(store, subject, signEnvelope(Buffer.from(JSON.stringify(statement)), IN_TOTO_PAYLOAD_TYPE, key.privateKey), key.keyid);
}

/** Stores an envelope about `subject` as an artifact, and lists it (tests use it to store a forged one). */
export async function storeEnvelope(store: ImageStore, subject: Digest, envelope: Envelope, keyid: string, now: Date = new Date()): Promise<StoredSignature> {
  const image = await store.blobs.read(subject);
  const mediaType = (JSON.parse(image.toString('utf8')) as { mediaType?: string }).mediaType ?? MediaType.manifest;
  const layer = await store.blobs.putJson(envelope);
  await store.blobs.putBuffer('{}');
  const manifest = await store.blobs.putJson({
    schemaVersion: 2,
    mediaType: MediaType.manifest,
    artifactType: ENVELOPE_MEDIA_TYPE,
    config: EMPTY_CONFIG,
    layers: [{ mediaType: ENVELOPE_MEDIA_TYPE, digest: layer.digest, size: layer.size }],
    subject: { mediaType, digest: subject, size: image.length },
    annotations: { 'org.opencontainers.image.created': now.toISOString(), 'dev.imago.keyid': keyid },
  });
  store.db
    .prepare('INSERT INTO signatures (manifest, subject, keyid, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (manifest) DO NOTHING')
    .run(manifest.digest, subject, keyid, now.toISOString());
  return { manifest: manifest.digest, subject, keyid, createdAt: now.toISOString() };
}

/** The signatures stored for `subject`, oldest first. */
export function signaturesOf(store: ImageStore, subject: Digest): StoredSignature[] {
  const rows = store.db.prepare('SELECT manifest, subject, keyid, created_at FROM signatures WHERE subject = ? ORDER BY created_at, manifest').all(subject) as Array<{ manifest: Digest; subject: Digest; keyid: string; created_at: string }>;
  return rows.map((r) => ({ manifest: r.manifest, subject: r.subject, keyid: r.keyid, createdAt: r.created_at }));
}

/** How an image's signatures checked against trusted keys. */
export type ImageVerification =
  | { ok: true; keyid: string; signature: StoredSignature; statement: Record<string, unknown> }
  | { ok: false; reason: 'unsigned' | 'unknown-key' | 'tampered'; message: string };

/**
 * Verifies image `digest` against `keys`: it holds when one of its signatures is an envelope
 * whose bytes match the digest it is stored under, signed by one of the keys over its
 * payload, and whose statement names this digest as its subject. Otherwise why not: no
 * signature, none by a trusted key, or one by a trusted key that was changed (tampered).
 */
export async function verifyImage(store: ImageStore, digest: Digest, keys: KeyObject[]): Promise<ImageVerification> {
  const signatures = signaturesOf(store, digest);
  if (signatures.length === 0) return { ok: false, reason: 'unsigned', message: `image ${digest} has no signature` };
  const failures: Array<{ reason: 'unknown-key' | 'tampered'; message: string }> = [];
  for (const signature of signatures) {
    let envelope: unknown;
    try {
      const layer = (await store.artifactBlobs(signature.manifest))[2]?.[0];
      if (!layer) throw new Error('it holds no envelope');
      const bytes = await store.blobs.read(layer);
      if (sha256(bytes) !== layer) {
        failures.push({ reason: 'tampered', message: `its signature envelope ${layer} does not match its digest: the file was changed` });
        continue;
      }
      envelope = JSON.parse(bytes.toString('utf8'));
    } catch (error) {
      failures.push({ reason: 'tampered', message: `its signature ${signature.manifest} cannot be read: ${(error as Error).message}` });
      continue;
    }
    const check = verifyEnvelope(envelope, keys);
    if (!check.ok) {
      failures.push({ reason: check.reason === 'unknown-key' ? 'unknown-key' : 'tampered', message: check.message });
      continue;
    }
    if ((envelope as Envelope).payloadType !== IN_TOTO_PAYLOAD_TYPE) {
      failures.push({ reason: 'tampered', message: `the signed payload is ${(envelope as Envelope).payloadType}, not an in-toto statement` });
      continue;
    }
    let statement: Record<string, unknown>;
    try {
      statement = JSON.parse(check.payload.toString('utf8')) as Record<string, unknown>;
    } catch {
      failures.push({ reason: 'tampered', message: 'the signed provenance is not JSON' });
      continue;
    }
    if (statement._type !== STATEMENT_TYPE || statement.predicateType !== SLSA_PROVENANCE) {
      failures.push({ reason: 'tampered', message: `the signed payload is not an in-toto statement with SLSA provenance (${String(statement._type)}, ${String(statement.predicateType)})` });
      continue;
    }
    if (!subjectsOf(statement).includes(digest)) {
      failures.push({ reason: 'tampered', message: `the signed provenance is about ${subjectsOf(statement).join(', ') || 'nothing'}, not ${digest}` });
      continue;
    }
    return { ok: true, keyid: check.keyid, signature, statement };
  }
  // A changed signature says more than one by a stranger.
  const worst = failures.find((f) => f.reason === 'tampered') ?? failures[0]!;
  return { ok: false, reason: worst.reason, message: `image ${digest}: ${worst.message}` };
}

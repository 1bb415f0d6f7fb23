import { z } from 'zod';
import { ImageError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import { jsonErrorOffset } from './json-offset.js';

/**
 * The shapes of the JSON documents an archive carries, checked before anything reads them:
 * an archive is hostile until proven otherwise. Unknown keys are kept (they belong to the
 * image, and an OCI layout's manifest stays byte-identical).
 */

const digest = z.string().regex(/^sha256:[a-f0-9]{64}$/, 'expected sha256:<64 lowercase hex digits>') as unknown as z.ZodType<Digest>;

const annotations = z.record(z.string(), z.string());

const platform = z.looseObject({ architecture: z.string(), os: z.string(), variant: z.string().optional() });

/** A descriptor: a typed, sized pointer to a blob. */
export const DescriptorSchema = z.looseObject({
  mediaType: z.string(),
  digest,
  size: z.number().int().nonnegative(),
  annotations: annotations.optional(),
  platform: platform.optional(),
});

/** An OCI layout's `oci-layout` marker file. */
export const OciLayoutSchema = z.looseObject({ imageLayoutVersion: z.string() });

/** An OCI layout's index.json, or a nested image index / docker manifest list. */
export const IndexSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(DescriptorSchema),
  annotations: annotations.optional(),
});

/** An image manifest (OCI or docker schema 2). */
export const ManifestSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  config: DescriptorSchema,
  layers: z.array(DescriptorSchema),
});

/** The part of an image config the import checks: the layers' diff ids. */
export const ConfigSchema = z.looseObject({
  architecture: z.string().optional(),
  os: z.string().optional(),
  rootfs: z.looseObject({ type: z.literal('layers'), diff_ids: z.array(digest) }),
});

/** `docker save`'s manifest.json. */
export const DockerManifestSchema = z.array(
  z.looseObject({
    Config: z.string(),
    RepoTags: z.array(z.string()).nullable().optional(),
    Layers: z.array(z.string()),
  }),
);

/** The largest JSON document an import reads into memory (checked by `Staging.read`, and by a folder source before it copies). */
export const MAX_JSON_BYTES = 16 * 1024 * 1024;

/** Parses JSON bytes against a schema; throws ImageError naming `what` and the first bad key path (never the input itself). */
export function parseJsonAs<T>(bytes: Buffer, schema: z.ZodType<T>, what: string): T {
  const text = bytes.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the input: say only where it broke.
    throw new ImageError(`${what} is not valid JSON (at position ${jsonErrorOffset(text)})`, { badInput: true });
  }
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const path = issue.path.length > 0 ? issue.path.map(String).join('.') : '(top level)';
  throw new ImageError(`${what} is not valid: ${path}: ${issue.message}`, { badInput: true });
}

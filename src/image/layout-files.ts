import type { Digest } from '../oci/digest.js';
import { digestHex } from '../oci/digest.js';
import { MediaType, type Descriptor, type Index, type Manifest } from '../oci/types.js';

/** One file of an exported archive: bytes built here, or a blob copied from the store. */
export type LayoutFile = { name: string; data: Buffer } | { name: string; blob: Digest; size: number };

/** What an export writes about one image. */
export interface LayoutPlan {
  digest: Digest;
  manifest: Pick<Manifest, 'config' | 'layers'> & { mediaType?: string };
  manifestSize: number;
  /** `name:tag`s to name the image by (may be empty). */
  tags: string[];
  /** String annotations for the index (the image's provenance). */
  annotations: Record<string, string>;
  /** Also write docker's manifest.json, so `docker load` (20.10 and later) reads it. */
  docker: boolean;
  /** Artifacts that refer to the image (its signatures): each manifest's descriptor and every blob it needs. */
  referrers?: Array<{ descriptor: Descriptor; blobs: Array<[Digest, number]> }>;
}

/** The fully qualified name containerd and docker use for a `name:tag` (`web:1` is `docker.io/library/web:1`). */
export function containerdName(ref: string): string {
  const first = ref.split('/')[0] ?? ref;
  const hasDomain = ref.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (hasDomain) return ref;
  return ref.includes('/') ? `docker.io/${ref}` : `docker.io/library/${ref}`;
}

/**
 * Lists the files of an OCI layout holding one image: `oci-layout`, an index.json with one
 * entry per tag (annotated with `org.opencontainers.image.ref.name` and
 * `io.containerd.image.name`) and one per artifact referring to the image (its signatures),
 * the blobs, and for docker a manifest.json pointing at them.
 */
export function layoutFiles(plan: LayoutPlan): LayoutFile[] {
  const manifestDescriptor = (annotations?: Record<string, string>): Descriptor => ({
    mediaType: plan.manifest.mediaType ?? MediaType.manifest,
    digest: plan.digest,
    size: plan.manifestSize,
    ...(annotations ? { annotations } : {}),
  });
  const index: Index = {
    schemaVersion: 2,
    mediaType: MediaType.index,
    manifests: [
      ...(plan.tags.length === 0
        ? [manifestDescriptor()]
        : plan.tags.map((tag) => manifestDescriptor({ 'io.containerd.image.name': containerdName(tag), 'org.opencontainers.image.ref.name': tag }))),
      // Listed by digest, never by name: tools that pick an image by its name never see them.
      ...(plan.referrers ?? []).map((r) => r.descriptor),
    ],
    ...(Object.keys(plan.annotations).length > 0 ? { annotations: plan.annotations } : {}),
  };
  const json = (value: unknown) => Buffer.from(`${JSON.stringify(value, null, 2)}\n`);
  const files: LayoutFile[] = [
    { name: 'oci-layout', data: Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })) },
    { name: 'index.json', data: json(index) },
  ];
  if (plan.docker) {
    const path = (digest: Digest) => `blobs/sha256/${digestHex(digest)}`;
    files.push({
      name: 'manifest.json',
      data: json([{ Config: path(plan.manifest.config.digest), RepoTags: plan.tags, Layers: plan.manifest.layers.map((l) => path(l.digest)) }]),
    });
  }
  const seen = new Set<Digest>();
  const blobs: Array<[Digest, number]> = [
    [plan.digest, plan.manifestSize],
    [plan.manifest.config.digest, plan.manifest.config.size],
    ...plan.manifest.layers.map((l): [Digest, number] => [l.digest, l.size]),
    ...(plan.referrers ?? []).flatMap((r) => r.blobs),
  ];
  for (const [digest, size] of blobs) {
    if (seen.has(digest)) continue;
    seen.add(digest);
    files.push({ name: `blobs/sha256/${digestHex(digest)}`, blob: digest, size });
  }
  return files;
}

import type { Digest } from './digest.js';

/** OCI and Docker media types imago reads and writes. */
export const MediaType = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

/** A reference from one OCI object to a blob. */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
  /** An artifact manifest's type (OCI 1.1), in an index that lists it. */
  artifactType?: string;
}

/** An OCI image manifest. */
export interface Manifest {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

/** An OCI image index (also the shape of an OCI layout's index.json). */
export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** The runtime part of an image config. */
export interface ImageRuntimeConfig {
  User?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  /** Paths the image asks an engine to mount a volume at (imago's own images never set it). */
  Volumes?: Record<string, Record<string, never>>;
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  Healthcheck?: {
    Test: string[];
    Interval?: number;
    Timeout?: number;
    StartPeriod?: number;
    Retries?: number;
  };
}

/** An OCI image config. */
export interface ImageConfig {
  created?: string;
  architecture: string;
  os: string;
  config?: ImageRuntimeConfig;
  rootfs: { type: 'layers'; diff_ids: Digest[] };
  history?: Array<{ created?: string; created_by?: string; comment?: string; empty_layer?: boolean }>;
}

/** True for a layer media type compressed with gzip. */
export function isGzipLayer(mediaType: string): boolean {
  return mediaType === MediaType.layerGzip || mediaType === MediaType.dockerLayerGzip;
}

/** True for any layer media type imago can read. */
export function isKnownLayer(mediaType: string): boolean {
  return (
    mediaType === MediaType.layer ||
    mediaType === MediaType.layerGzip ||
    mediaType === MediaType.dockerLayer ||
    mediaType === MediaType.dockerLayerGzip
  );
}

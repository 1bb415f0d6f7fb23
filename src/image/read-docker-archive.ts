import { open } from 'node:fs/promises';
import { ImageError } from '../errors.js';
import { MediaType, type Descriptor } from '../oci/types.js';
import { safeEntryName } from '../oci/safe-path.js';
import { buildManifest, manifestBytes } from './build-manifest.js';
import { readArchiveJson, type ImportSource } from './import-source.js';
import { normaliseImageName } from './import-tags.js';
import { DockerManifestSchema, MAX_JSON_BYTES } from './schemas.js';
import type { StagedImage } from './staged-image.js';
import type { Staging, StagedFile } from './staging.js';

/** Names that carry their content's digest: `blobs/sha256/<hex>` and `<hex>.json`. */
const DIGEST_NAME_RE = /^(?:blobs\/sha256\/([a-f0-9]{64})|([a-f0-9]{64})\.json)$/;

/**
 * Reads a legacy `docker save` archive (manifest.json, a config JSON, layer tars) and
 * converts its image to an OCI manifest: the config blob is kept as it is, each layer is the
 * archive's file as it is, typed tar or tar+gzip by its first bytes.
 */
export async function readDockerArchive(source: ImportSource, staging: Staging, options: { requested?: string }): Promise<StagedImage> {
  const entry = chooseEntry(await readDockerManifest(source, staging), options.requested);

  const configFile = checkNamed(entry.Config, await source.get(entry.Config, { maxBytes: MAX_JSON_BYTES }), 'config');
  const config: Descriptor = { mediaType: MediaType.config, digest: configFile.digest, size: configFile.size };
  const layers = [];
  for (const name of entry.Layers) {
    const file = checkNamed(name, await source.get(name), 'layer');
    layers.push({ file, descriptor: { mediaType: await layerMediaType(name, file), digest: file.digest, size: file.size } });
  }
  const manifest = await staging.stageBuffer(manifestBytes(buildManifest(config, layers.map((l) => l.descriptor))));

  return {
    manifest,
    config: { file: configFile, descriptor: config },
    layers,
    names: { refNames: [], imageNames: [], repoTags: entry.RepoTags ?? [] },
    annotations: {},
    warnings: [],
  };
}

type DockerEntry = ReturnType<typeof DockerManifestSchema.parse>[number];

/** docker's manifest.json: one entry (config, layers, tags) per image. */
export function readDockerManifest(source: ImportSource, staging: Staging): Promise<DockerEntry[]> {
  return readArchiveJson(source, staging, 'manifest.json', DockerManifestSchema);
}

function chooseEntry(entries: DockerEntry[], requested: string | undefined): DockerEntry {
  if (entries.length === 1) return entries[0]!;
  if (entries.length === 0) throw new ImageError(`manifest.json lists no image`, { badInput: true });
  const wanted = requested === undefined ? undefined : normaliseImageName(requested);
  const named = entries.filter((e) => (e.RepoTags ?? []).some((t) => normaliseImageName(t) === wanted));
  if (named.length === 1) return named[0]!;
  const list = entries.map((e) => e.RepoTags?.[0] ?? e.Config).join(', ');
  throw new ImageError(`manifest.json lists ${entries.length} images (${list}): imago imports one at a time, choose it with --tag <name:tag>`, { badInput: true });
}

/** Refuses a file whose name carries a digest it does not hash to. */
function checkNamed(name: string, file: StagedFile, what: string): StagedFile {
  const match = DIGEST_NAME_RE.exec(safeEntryName(name));
  const hex = match?.[1] ?? match?.[2];
  if (hex !== undefined && file.digest !== `sha256:${hex}`) {
    throw new ImageError(`${what} '${name}' is corrupt: it does not hash to the digest its name gives`, { badInput: true });
  }
  return file;
}

/** tar or tar+gzip, by the file's magic bytes; zstd and anything else are refused. */
async function layerMediaType(name: string, file: StagedFile): Promise<string> {
  const handle = await open(file.path, 'r');
  const head = Buffer.alloc(4);
  try {
    await handle.read(head, 0, 4, 0);
  } finally {
    await handle.close();
  }
  if (head[0] === 0x1f && head[1] === 0x8b) return MediaType.layerGzip;
  if (head.equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) {
    throw new ImageError(`layer '${name}' is zstd-compressed: imago reads tar and tar+gzip layers only`, { badInput: true });
  }
  return MediaType.layer;
}

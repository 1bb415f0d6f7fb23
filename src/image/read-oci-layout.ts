import { ImageError } from '../errors.js';
import { digestHex, type Digest } from '../oci/digest.js';
import { isKnownLayer, MediaType, type Descriptor } from '../oci/types.js';
import { readArchiveJson, type ImportSource } from './import-source.js';
import { pickManifest, type ManifestCandidate } from './pick-manifest.js';
import { readDockerManifest } from './read-docker-archive.js';
import { IndexSchema, ManifestSchema, MAX_JSON_BYTES, OciLayoutSchema, parseJsonAs } from './schemas.js';
import { checkBlob, type StagedImage } from './staged-image.js';
import type { Staging, StagedFile } from './staging.js';

const INDEX_TYPES: string[] = [MediaType.index, MediaType.dockerManifestList];
const MANIFEST_TYPES: string[] = [MediaType.manifest, MediaType.dockerManifest];

/** How an OCI layout is read: the host platform to pick, the image asked for, and how many manifests an index may offer. */
export interface ReadLayoutOptions {
  requested?: string;
  architecture: string;
  variant?: string;
  maxManifests: number;
}

/**
 * Reads the image of an OCI layout (a docker archive of the newer format is one too): the
 * manifest index.json leads to, through at most one nested index, with every blob staged
 * and checked against its descriptor. The manifest is kept byte-identical. Each nested index
 * is read once however many entries name it, and an index offering more than `maxManifests`
 * manifests (nested ones included) is refused.
 */
export async function readOciLayout(source: ImportSource, staging: Staging, options: ReadLayoutOptions): Promise<StagedImage> {
  const warnings: string[] = [];
  const blob = async (descriptor: Descriptor, what: string, json: boolean): Promise<StagedFile> => {
    const expected = json ? { size: descriptor.size, maxBytes: MAX_JSON_BYTES } : { size: descriptor.size };
    return checkBlob(await source.get(`blobs/sha256/${digestHex(descriptor.digest)}`, expected), descriptor, what);
  };

  if (await source.has('oci-layout')) await readArchiveJson(source, staging, 'oci-layout', OciLayoutSchema);
  const index = await readArchiveJson(source, staging, 'index.json', IndexSchema);

  const candidates: ManifestCandidate[] = [];
  const offer = (descriptor: Descriptor, annotations: Record<string, string>) => {
    if (candidates.length >= options.maxManifests) {
      throw new ImageError(`the archive's index offers more than ${options.maxManifests} image manifests (nested indexes included): refusing it`, { badInput: true });
    }
    candidates.push({ descriptor, annotations });
  };
  const nestedIndexes = new Map<Digest, { file: StagedFile; children: Descriptor[] }>();
  for (const entry of index.manifests) {
    const annotations = entry.annotations ?? {};
    if (MANIFEST_TYPES.includes(entry.mediaType)) {
      offer(entry, annotations);
    } else if (INDEX_TYPES.includes(entry.mediaType)) {
      let nested = nestedIndexes.get(entry.digest);
      if (!nested) {
        const file = await blob(entry, 'image index', true);
        const children = parseJsonAs(await staging.read(file), IndexSchema, `image index ${entry.digest}`).manifests;
        for (const child of children.filter((c) => !MANIFEST_TYPES.includes(c.mediaType))) {
          warnings.push(`skipped ${child.mediaType} ${child.digest} inside index ${entry.digest}: only one level of nested index is followed`);
        }
        nested = { file, children: children.filter((c) => MANIFEST_TYPES.includes(c.mediaType)) };
        nestedIndexes.set(entry.digest, nested);
      }
      checkBlob(nested.file, entry, 'image index');
      for (const child of nested.children) offer(child, annotations);
    } else {
      warnings.push(`skipped index.json entry ${entry.digest}: media type '${entry.mediaType}' is not an image`);
    }
  }
  const choice = pickManifest(candidates, options);
  if ('error' in choice) throw new ImageError(choice.error, { badInput: true });
  warnings.push(...choice.warnings);

  const manifestFile = await blob(choice.descriptor, 'manifest', true);
  const manifest = parseJsonAs(await staging.read(manifestFile), ManifestSchema, `manifest ${choice.descriptor.digest}`);
  if (manifest.mediaType !== undefined && !MANIFEST_TYPES.includes(manifest.mediaType)) {
    throw new ImageError(`manifest ${choice.descriptor.digest} has media type '${manifest.mediaType}', not an image manifest`, { badInput: true });
  }
  const config = { file: await blob(manifest.config, 'config', true), descriptor: manifest.config };
  const layers = [];
  for (const layer of manifest.layers) {
    if (!isKnownLayer(layer.mediaType)) {
      throw new ImageError(`layer ${layer.digest} has media type '${layer.mediaType}': imago reads tar and tar+gzip layers only`, { badInput: true });
    }
    layers.push({ file: await blob(layer, 'layer', false), descriptor: layer });
  }

  return {
    manifest: manifestFile,
    config,
    layers,
    names: { refNames: choice.refNames, imageNames: choice.imageNames, repoTags: await repoTagsOf(source, staging, config.descriptor) },
    annotations: index.annotations ?? {},
    warnings,
  };
}

/** docker's RepoTags for this config, when the layout is also a docker archive. */
async function repoTagsOf(source: ImportSource, staging: Staging, config: Descriptor): Promise<string[]> {
  if (!(await source.has('manifest.json'))) return [];
  const hex = digestHex(config.digest);
  return (await readDockerManifest(source, staging)).filter((e) => e.Config.includes(hex)).flatMap((e) => e.RepoTags ?? []);
}

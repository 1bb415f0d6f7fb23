import { ImageError } from '../errors.js';
import { digestHex } from '../oci/digest.js';
import { isKnownLayer, MediaType, type Descriptor } from '../oci/types.js';
import type { ImportSource } from './import-source.js';
import { pickManifest, type ManifestCandidate } from './pick-manifest.js';
import { DockerManifestSchema, IndexSchema, ManifestSchema, OciLayoutSchema, parseJsonAs } from './schemas.js';
import { checkBlob, type StagedImage } from './staged-image.js';
import type { Staging, StagedFile } from './staging.js';

const INDEX_TYPES: string[] = [MediaType.index, MediaType.dockerManifestList];
const MANIFEST_TYPES: string[] = [MediaType.manifest, MediaType.dockerManifest];

/**
 * Reads the image of an OCI layout (a docker archive of the newer format is one too): the
 * manifest index.json leads to, through at most one nested index, with every blob staged
 * and checked against its descriptor. The manifest is kept byte-identical.
 */
export async function readOciLayout(
  source: ImportSource,
  staging: Staging,
  options: { requested?: string; architecture: string },
): Promise<StagedImage> {
  const warnings: string[] = [];
  const blob = async (descriptor: Descriptor, what: string): Promise<StagedFile> =>
    checkBlob(await source.get(`blobs/sha256/${digestHex(descriptor.digest)}`), descriptor, what);

  if (await source.has('oci-layout')) {
    parseJsonAs(await staging.read(await source.get('oci-layout')), OciLayoutSchema, 'oci-layout');
  }
  const index = parseJsonAs(await staging.read(await source.get('index.json')), IndexSchema, 'index.json');

  const candidates: ManifestCandidate[] = [];
  for (const entry of index.manifests) {
    const annotations = entry.annotations ?? {};
    if (MANIFEST_TYPES.includes(entry.mediaType)) {
      candidates.push({ descriptor: entry, annotations });
    } else if (INDEX_TYPES.includes(entry.mediaType)) {
      const nested = parseJsonAs(await staging.read(await blob(entry, 'image index')), IndexSchema, `image index ${entry.digest}`);
      for (const child of nested.manifests) {
        if (MANIFEST_TYPES.includes(child.mediaType)) candidates.push({ descriptor: child, annotations });
        else warnings.push(`skipped ${child.mediaType} ${child.digest} inside index ${entry.digest}: only one level of nested index is followed`);
      }
    } else {
      warnings.push(`skipped index.json entry ${entry.digest}: media type '${entry.mediaType}' is not an image`);
    }
  }
  const choice = pickManifest(candidates, options);
  if ('error' in choice) throw new ImageError(choice.error, { badInput: true });
  warnings.push(...choice.warnings);

  const manifestFile = await blob(choice.descriptor, 'manifest');
  const manifest = parseJsonAs(await staging.read(manifestFile), ManifestSchema, `manifest ${choice.descriptor.digest}`);
  if (manifest.mediaType !== undefined && !MANIFEST_TYPES.includes(manifest.mediaType)) {
    throw new ImageError(`manifest ${choice.descriptor.digest} has media type '${manifest.mediaType}', not an image manifest`, { badInput: true });
  }
  const config = { file: await blob(manifest.config, 'config'), descriptor: manifest.config };
  const layers = [];
  for (const layer of manifest.layers) {
    if (!isKnownLayer(layer.mediaType)) {
      throw new ImageError(`layer ${layer.digest} has media type '${layer.mediaType}': imago reads tar and tar+gzip layers only`, { badInput: true });
    }
    layers.push({ file: await blob(layer, 'layer'), descriptor: layer });
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
  const entries = parseJsonAs(await staging.read(await source.get('manifest.json')), DockerManifestSchema, 'manifest.json');
  const hex = digestHex(config.digest);
  return entries.filter((e) => e.Config.includes(hex)).flatMap((e) => e.RepoTags ?? []);
}

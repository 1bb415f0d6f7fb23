import { stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { ImageSpec } from '../config/types.js';
import { BakeError, ImageError, reasonOf } from '../errors.js';
import { sha256, type Digest } from '../oci/digest.js';
import { writeLayer, type LayerEntry, type WrittenLayer } from '../oci/layer-writer.js';
import { MediaType, type Descriptor, type ImageConfig, type Manifest } from '../oci/types.js';
import type { CachedLayer, ImageStore } from '../store/image-store.js';
import { ensureSigningKey } from '../sign/keys.js';
import { provenanceStatement } from '../sign/provenance.js';
import { signImage } from '../sign/signatures.js';
import { IMAGO_VERSION } from '../version.js';
import { hostCacheKey, specHash, stepCacheKey } from './cache-key.js';
import { copyEntries } from './copy-entries.js';
import type { BakeEvent } from './events.js';
import { FileHasher } from './file-hasher.js';
import { gitInfo } from './git-info.js';
import { hostBaseEntries } from './host-base.js';
import { buildImageConfig, describeStep, mergeEnv, ProvenanceLabel } from './image-config.js';
import { SandboxRoot } from './sandbox-root.js';

/** Options of one bake. */
export interface BakeOptions {
  store: ImageStore;
  spec: ImageSpec;
  /** Extra tags (`1.4`, or `name:tag`) to point at the result. */
  tags?: string[];
  /** Rebuild every layer, ignoring the cache. */
  noCache?: boolean;
  onEvent?: (event: BakeEvent) => void;
}

/** One layer of a baked image and whether the cache served it. */
export interface BakedLayer {
  step: string;
  digest: Digest;
  size: number;
  cached: boolean;
}

/** The outcome of a bake. */
export interface BakeResult {
  name: string;
  digest: Digest;
  /** Every `name:tag` now pointing at the image. */
  tags: string[];
  /** The per-bake version tag (`web:3`). */
  version: string;
  /** False when the same digest was baked before (no new version). */
  newVersion: boolean;
  layers: BakedLayer[];
  cacheHits: number;
  ms: number;
}

/**
 * Bakes an image from its spec into the store, step by step: the base, then each copy and
 * run step as a layer. A step whose cache key (layers below + step + input digest) was seen
 * before reuses its layer without any layer work. Tags `name:latest` and a per-bake
 * version `name:<n>` (a new number only when the digest is new).
 *
 * @example
 * const result = await bake({ store, spec: config.images.web });
 * console.log(result.digest, result.version);
 */
export async function bake(options: BakeOptions): Promise<BakeResult> {
  const started = Date.now();
  const { store, spec } = options;
  const emit = options.onEvent ?? (() => undefined);
  const hasher = new FileHasher(store.db);
  const total = spec.steps.length + 1;
  const where = `images.${spec.name}`;
  emit({ type: 'start', image: spec.name, total });

  const layers: Descriptor[] = [];
  const diffIds: Digest[] = [];
  const baked: BakedLayer[] = [];
  const history: string[] = [];
  let baseConfig: ImageConfig | undefined;
  let baseDigest = 'scratch';
  let rootfs: SandboxRoot | undefined;
  const release = store.lease('bake');
  const git = gitInfo(spec.context); // read alongside the bake: it spawns git
  git.catch(() => undefined);
  let failure: unknown;

  const lookup = async (key: string): Promise<CachedLayer | undefined> => (options.noCache ? undefined : store.cacheGet(key));
  const record = (index: number, label: string, layer: CachedLayer | WrittenLayer, cached: boolean, ms: number) => {
    layers.push({ mediaType: layer.mediaType, digest: layer.digest, size: layer.size });
    diffIds.push(layer.diffId);
    baked.push({ step: label, digest: layer.digest, size: layer.size, cached });
    emit({ type: 'step-done', index, total, label, cached, digest: layer.digest, size: layer.size, ms });
  };

  try {
    if (spec.steps.some((step) => step.kind === 'copy')) await checkContext(spec.context, `${where}.context`);
    // Step 0: the base.
    const from = spec.from;
    const baseLabel = from.kind === 'scratch' ? 'from scratch' : from.kind === 'image' ? `from ${from.ref}` : `from host ${from.executables.join(' ')}`;
    emit({ type: 'step-start', index: 0, total, label: baseLabel });
    const baseStart = Date.now();
    if (from.kind === 'image') {
      let digest: Digest;
      try {
        digest = store.resolve(from.ref);
      } catch (error) {
        if (error instanceof ImageError) throw new BakeError(`${where}.from: ${error.message}`, { cause: error, exitCode: error.exitCode });
        throw error;
      }
      const manifest = await store.manifest(digest);
      baseConfig = await store.config(digest);
      layers.push(...manifest.layers);
      diffIds.push(...baseConfig.rootfs.diff_ids);
      baseDigest = digest;
      emit({ type: 'step-done', index: 0, total, label: baseLabel, cached: true, digest, size: 0, ms: Date.now() - baseStart });
    } else if (from.kind === 'host') {
      const host = await hostBaseEntries(from.executables, hasher);
      const key = hostCacheKey(host.inputDigest);
      const hit = await lookup(key);
      const layer = hit ?? (await write(host.entries, `${where}.from`));
      if (!hit) store.cachePut(key, layer);
      record(0, baseLabel, layer, Boolean(hit), Date.now() - baseStart);
      history.push(`${baseLabel} (${host.paths.join(', ')})`);
      baseDigest = layer.digest;
    } else {
      emit({ type: 'step-done', index: 0, total, label: baseLabel, cached: true, digest: undefined, size: 0, ms: 0 });
    }

    // Steps 1..n.
    const contextDigests: string[] = [];
    for (const [i, step] of spec.steps.entries()) {
      const index = i + 1;
      const label = describeStep(step);
      const stepWhere = `${where}.${step.key}`;
      emit({ type: 'step-start', index, total, label });
      const stepStart = Date.now();
      if (step.kind === 'copy') {
        let files = 0;
        const input = await copyEntries(spec.context, step, hasher, stepWhere, () => {
          if (++files % 500 === 0) emit({ type: 'files', index, count: files });
        });
        contextDigests.push(input.inputDigest);
        const key = stepCacheKey(diffIds, step, input.inputDigest);
        const hit = await lookup(key);
        const layer = hit ?? (await write(input.entries, stepWhere));
        if (!hit) store.cachePut(key, layer);
        if (rootfs) await rootfs.apply(layer.digest);
        record(index, label, layer, Boolean(hit), Date.now() - stepStart);
      } else {
        const env = mergeEnv(baseConfig?.config?.Env, spec.env);
        const cwd = spec.workdir ?? baseConfig?.config?.WorkingDir ?? '/';
        const key = stepCacheKey(diffIds, step, JSON.stringify({ env, cwd }));
        const hit = await lookup(key);
        let layer: CachedLayer | WrittenLayer;
        if (hit) {
          layer = hit;
          if (rootfs) await rootfs.apply(layer.digest);
        } else {
          rootfs ??= await SandboxRoot.create(store, layers);
          layer = await rootfs.run(step, {
            env,
            cwd,
            where: `${stepWhere} (${label})`,
            workdirKey: spec.workdir ? `${where}.workdir` : `${where}.from (its working folder)`,
            onLine: (line) => emit({ type: 'output', index, line }),
            onWarning: (message) => emit({ type: 'warning', message }),
          });
          store.cachePut(key, layer);
        }
        record(index, label, layer, Boolean(hit), Date.now() - stepStart);
      }
      history.push(label);
    }

    // The config and manifest.
    const provenanceLabels: Record<string, string> = {
      [ProvenanceLabel.spec]: specHash(spec),
      [ProvenanceLabel.context]: contextDigests.length ? sha256(contextDigests.join('\n')) : 'none',
      [ProvenanceLabel.base]: baseDigest,
      [ProvenanceLabel.version]: IMAGO_VERSION,
    };
    const config = buildImageConfig({ spec, base: baseConfig, diffIds, history, provenance: provenanceLabels });
    const configBlob = await store.blobs.putJson(config);
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: MediaType.manifest,
      config: { mediaType: MediaType.config, digest: configBlob.digest, size: configBlob.size },
      layers,
    };
    const manifestBlob = await store.blobs.putJson(manifest);
    const digest = manifestBlob.digest;
    const repo = await git;
    store.addImage({
      digest,
      configDigest: configBlob.digest,
      size: manifestBlob.size + configBlob.size + layers.reduce((sum, l) => sum + l.size, 0),
      source: 'bake',
      provenance: {
        image: spec.name,
        spec: provenanceLabels[ProvenanceLabel.spec],
        context: provenanceLabels[ProvenanceLabel.context],
        base: baseDigest,
        imagoVersion: IMAGO_VERSION,
        ...(repo ? { gitCommit: repo.commit, gitDirty: repo.dirty } : {}),
        bakedAt: new Date().toISOString(),
        bakedOn: hostname(),
      },
    });
    const { version, isNew } = await tagBake(store, spec.name, digest, options.tags ?? []);
    // What was made, from what, by which imago: signed with the state folder's key, kept beside the image.
    const statement = provenanceStatement({
      name: spec.name,
      digest,
      spec: provenanceLabels[ProvenanceLabel.spec]!,
      context: provenanceLabels[ProvenanceLabel.context]!,
      base: baseDigest,
      imagoVersion: IMAGO_VERSION,
      startedOn: new Date(started).toISOString(),
      finishedOn: new Date().toISOString(),
      ...(repo ? { gitCommit: repo.commit, gitDirty: repo.dirty } : {}),
    });
    await signImage(store, digest, statement, ensureSigningKey(store.home));
    return {
      name: spec.name,
      digest,
      tags: store.tagsOfDigest(digest),
      version,
      newVersion: isNew,
      layers: baked,
      cacheHits: baked.filter((l) => l.cached).length,
      ms: Date.now() - started,
    };
  } catch (error) {
    failure = error;
    throw error;
  } finally {
    // Clean-up never hides the bake's own result or first error.
    try {
      hasher.flush();
      await rootfs?.dispose();
    } catch (error) {
      if (failure === undefined) emit({ type: 'warning', message: `failed to clean up after the bake: ${reasonOf(error)}` });
    }
    release();
  }

  /** Writes a layer, naming the step in any error. */
  async function write(entries: LayerEntry[], at: string): Promise<WrittenLayer> {
    try {
      return await writeLayer(store.blobs, entries);
    } catch (error) {
      throw new BakeError(`${at}: failed to write its layer: ${reasonOf(error)}`, { cause: error });
    }
  }
}

/** The build context must be a folder that exists. */
async function checkContext(context: string, key: string): Promise<void> {
  const info = await stat(context).catch((error: NodeJS.ErrnoException) => {
    throw new BakeError(`${key}: expected an existing folder, got "${context}" (${error.code === 'ENOENT' ? 'no such folder' : error.message})`, { exitCode: 2 });
  });
  if (!info.isDirectory()) throw new BakeError(`${key}: expected a folder, got a file ("${context}")`, { exitCode: 2 });
}

/** Points `name:latest`, the per-bake version and any extra tags at the image. */
async function tagBake(store: ImageStore, name: string, digest: Digest, extra: string[]): Promise<{ version: string; isNew: boolean }> {
  const existing = store.tagsOfDigest(digest).find((t) => t.startsWith(`${name}:`) && /^\d+$/.test(t.slice(name.length + 1)));
  const version = existing ?? `${name}:${store.nextVersion(name)}`;
  // All at once: one transaction, one index.json write, and a bad extra tag changes nothing.
  const refs = [...(existing ? [] : [version]), `${name}:latest`, ...extra.map((tag) => (tag.lastIndexOf(':') > 0 ? tag : `${name}:${tag}`))];
  await store.tagMany(refs, digest);
  return { version, isNew: !existing };
}

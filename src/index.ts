/**
 * imago's library API: what the CLI does, a program can do by importing it.
 *
 * @example
 * import { ImageStore, bake, loadConfig, resolveHome } from 'imago';
 * const config = await loadConfig({ cwd: 'examples/hello' });
 * const store = await ImageStore.open(resolveHome());
 * const result = await bake({ store, spec: config.images.hello! });
 */
export * from './config/index.js';
export { bake, type BakeOptions, type BakeResult, type BakedLayer } from './bake/baker.js';
export { bakeOrder } from './bake/bake-order.js';
export type { BakeEvent } from './bake/events.js';
export { exportImage } from './image/export.js';
export { importImage } from './image/import.js';
export { unpackImage } from './image/unpack-image.js';
export { ImageStore, type ImageRecord, type TagRecord, type GcResult } from './store/image-store.js';
export { resolveHome } from './store/home.js';
export { BlobStore } from './store/blob-store.js';
export { parseImageRef, formatImageRef, type ImageRef } from './oci/reference.js';
export { MediaType, type Manifest, type ImageConfig, type Index, type Descriptor } from './oci/types.js';
export type { Digest } from './oci/digest.js';
export { ImagoError, ConfigError, BakeError, ImageError, ProviderError } from './errors.js';
export { planRollout } from './core/plan.js';
export { reconcile, classify, type Actions, type Buckets, type DesiredService, type ObservedInstance } from './core/reconcile.js';
export type { RolloutPlan, RolloutStep, RolloutState, RolloutLimits } from './core/rollout.js';
export { strategyFor, STRATEGIES, type Strategy } from './core/strategies/index.js';
export { parseCount, resolveCount, type Count } from './core/count.js';
export { Label, type Provider, type InstanceSpec, type ProviderInstance } from './providers/provider.js';
export { ProcessProvider } from './providers/process/process-provider.js';
export { DockerProvider } from './providers/docker/docker-provider.js';
export { Providers } from './providers/registry.js';
export { InProcessRouter } from './router/in-process.js';
export type { RouterControl, RouterTarget, RouterStats, RouterSnapshot } from './router/router-control.js';
export { IMAGO_VERSION } from './version.js';

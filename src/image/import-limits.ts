import { ImageError } from '../errors.js';

/**
 * How much an archive may make an import do. Past any limit the whole archive is refused as
 * bad input, before the work it would cost: each is checked as the archive is read.
 */
export interface ImportLimits {
  /** Entries in an archive tar (files, folders and links). */
  maxEntries: number;
  /** Bytes staged (copied into the store's temp folder) from one archive tar. */
  maxStagedBytes: number;
  /** Image manifests an index may offer, those of nested indexes included. */
  maxManifests: number;
  /** Tags one import applies. */
  maxTags: number;
  /** Bytes one layer may hold uncompressed. */
  maxLayerBytes: number;
  /** How many times its compressed size a gzip stream (a layer, a gzip'd archive) may inflate to… */
  maxGzipRatio: number;
  /** …once it inflates to more than this many bytes. */
  gzipRatioFloorBytes: number;
}

const GiB = 1024 ** 3;

/** The limits of an import that sets none: generous for real images, tight for bombs. */
export const DEFAULT_IMPORT_LIMITS: Readonly<ImportLimits> = Object.freeze({
  maxEntries: 100_000,
  maxStagedBytes: 64 * GiB,
  maxManifests: 1000,
  maxTags: 100,
  maxLayerBytes: 64 * GiB,
  maxGzipRatio: 1000,
  gzipRatioFloorBytes: GiB,
});

/** The defaults with the caller's overrides, each checked to be a positive integer. */
export function importLimits(overrides: Partial<ImportLimits> = {}): ImportLimits {
  const limits = { ...DEFAULT_IMPORT_LIMITS };
  for (const [key, value] of Object.entries(overrides) as Array<[keyof ImportLimits, unknown]>) {
    if (value === undefined) continue;
    if (!(key in DEFAULT_IMPORT_LIMITS)) throw new ImageError(`limits.${key}: unknown limit (expected one of ${Object.keys(DEFAULT_IMPORT_LIMITS).join(', ')})`, { badInput: true });
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
      throw new ImageError(`limits.${key}: expected a positive integer, got ${JSON.stringify(value)}`, { badInput: true });
    }
    limits[key] = value;
  }
  return limits;
}

/** True when `inflated` bytes from `compressed` gzip'd bytes look like a bomb: past both the ratio and its floor. */
export function exceedsGzipRatio(inflated: number, compressed: number, limits: Pick<ImportLimits, 'maxGzipRatio' | 'gzipRatioFloorBytes'>): boolean {
  return inflated > limits.gzipRatioFloorBytes && inflated > compressed * limits.maxGzipRatio;
}

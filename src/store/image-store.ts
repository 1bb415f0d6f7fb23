import { mkdir, readdir, rename, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ImageError, ImagoError } from '../errors.js';
import { removeTree } from './remove-tree.js';
import type { Digest } from "../oci/digest.js";
import { formatImageRef, parseImageRef } from '../oci/reference.js';
import { MediaType, type ImageConfig, type Index, type Manifest } from '../oci/types.js';
import { BlobStore } from './blob-store.js';
import { openDb, type Db } from './db.js';

/** Where an image came from. */
export type ImageSource = 'bake' | 'import';

/** A stored image as listed. */
export interface ImageRecord {
  digest: Digest;
  configDigest: Digest;
  size: number;
  source: ImageSource;
  createdAt: string;
  provenance: Record<string, unknown> | undefined;
  tags: string[];
}

/** A tag and the image it points at. */
export interface TagRecord {
  name: string;
  tag: string;
  digest: Digest;
  updatedAt: string;
}

/** A layer cache entry: the layer a bake step with a given key produced. */
export interface CachedLayer {
  digest: Digest;
  diffId: Digest;
  size: number;
  mediaType: string;
}

/** What a garbage collection removed. */
export interface GcResult {
  removedImages: Digest[];
  removedBlobs: number;
  freedBytes: number;
  keptImages: number;
}

interface ImageRow {
  digest: string;
  config_digest: string;
  size: number;
  source: string;
  created_at: string;
  provenance: string | null;
}

/**
 * imago's image store: blobs in an OCI layout (`<home>/store`), image records, tags and
 * the layer cache in the state database. The layout's `index.json` is rewritten on every
 * tag change, so third-party tools read the store directly (`skopeo inspect oci:<store>:web:1`).
 */
export class ImageStore {
  readonly home: string;
  readonly blobs: BlobStore;
  readonly db: Db;

  private constructor(home: string, blobs: BlobStore, db: Db) {
    this.home = home;
    this.blobs = blobs;
    this.db = db;
  }

  /** Opens the store under `home`, creating it on first use. */
  static async open(home: string): Promise<ImageStore> {
    let store: ImageStore;
    try {
      await mkdir(home, { recursive: true, mode: 0o700 });
      const blobs = new BlobStore(join(home, 'store'));
      await blobs.init();
      await writeFile(join(blobs.root, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
      store = new ImageStore(home, blobs, openDb(join(home, 'imago.db')));
    } catch (error) {
      if (error instanceof ImagoError) throw error;
      throw new ImagoError(`failed to open state directory '${home}': ${(error as Error).message} (set --home or IMAGO_HOME to a writable folder)`, { cause: error });
    }
    await store.clearStaleTemp();
    await store.writeLayoutIndex();
    return store;
  }

  /** Closes the database. */
  close(): void {
    this.db.close();
  }

  /** Records an image whose manifest and blobs are already stored. Idempotent. */
  addImage(image: { digest: Digest; configDigest: Digest; size: number; source: ImageSource; provenance?: Record<string, unknown> }): void {
    this.db
      .prepare(
        `INSERT INTO images (digest, config_digest, size, source, created_at, provenance)
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(digest) DO NOTHING`,
      )
      .run(image.digest, image.configDigest, image.size, image.source, new Date().toISOString(), image.provenance ? JSON.stringify(image.provenance) : null);
  }

  /** The image record for a digest, or undefined. */
  getImage(digest: Digest): ImageRecord | undefined {
    const row = this.db.prepare(`SELECT * FROM images WHERE digest = ?`).get(digest) as ImageRow | undefined;
    return row ? this.toRecord(row) : undefined;
  }

  /**
   * Resolves a reference (`web`, `web:1.4`, `web@sha256:…`, `sha256:…`, or a unique digest
   * prefix of 12+ hex digits) to a stored image's digest. Unknown references throw ImageError(notFound).
   */
  resolve(reference: string): Digest {
    return this.lookup(reference).digest;
  }

  /** Like `resolve`, and also says which tag the reference named, when it named one. */
  lookup(reference: string): { digest: Digest; tag?: { name: string; tag: string } } {
    const prefix = /^(?:sha256:)?([a-f0-9]{12,63})$/.exec(reference);
    if (prefix) {
      const rows = this.db.prepare(`SELECT digest FROM images WHERE digest LIKE ?`).all(`sha256:${prefix[1]}%`) as { digest: Digest }[];
      if (rows.length === 1) return { digest: rows[0]!.digest };
      if (rows.length > 1) throw new ImageError(`image reference '${reference}' is ambiguous: it matches ${rows.length} images`, { badInput: true });
    }
    const ref = parseImageRef(reference);
    if ('error' in ref) throw new ImageError(`invalid image reference '${reference}': ${ref.error}`, { badInput: true });
    if (ref.kind === 'digest') {
      if (!this.getImage(ref.digest)) throw new ImageError(`image '${reference}' not found in the store`, { notFound: true });
      return { digest: ref.digest };
    }
    const row = this.db.prepare(`SELECT digest FROM tags WHERE name = ? AND tag = ?`).get(ref.name, ref.tag) as { digest: Digest } | undefined;
    if (!row) throw new ImageError(`image '${formatImageRef(ref)}' not found in the store (see 'imago images')`, { notFound: true });
    return { digest: row.digest, tag: { name: ref.name, tag: ref.tag } };
  }

  /** Reads an image's manifest. */
  async manifest(digest: Digest): Promise<Manifest> {
    return this.blobs.readJson<Manifest>(digest);
  }

  /** Reads an image's config. */
  async config(digest: Digest): Promise<ImageConfig> {
    const manifest = await this.manifest(digest);
    return this.blobs.readJson<ImageConfig>(manifest.config.digest);
  }

  /** Points `name:tag` at an image and rewrites the layout index. */
  async tag(name: string, tag: string, digest: Digest): Promise<void> {
    await this.tagMany([`${name}:${tag}`], digest);
  }

  /**
   * Points every `name:tag` of `refs` at an image, all in one transaction, then rewrites the
   * layout index once. An invalid tag or an unknown image changes nothing.
   */
  async tagMany(refs: readonly string[], digest: Digest): Promise<void> {
    const tags = refs.map((ref) => {
      const parsed = parseImageRef(ref);
      if ('error' in parsed || parsed.kind !== 'tag') throw new ImageError(`invalid tag '${ref}': ${'error' in parsed ? parsed.error : 'expected name:tag'}`, { badInput: true });
      return parsed;
    });
    if (tags.length === 0) return;
    const upsert = this.db.prepare(
      `INSERT INTO tags (name, tag, digest, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT(name, tag) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`,
    );
    const now = new Date().toISOString();
    this.db.transaction(() => {
      if (!this.db.prepare(`SELECT 1 FROM images WHERE digest = ?`).get(digest)) throw new ImageError(`image '${digest}' not found in the store`, { notFound: true });
      for (const { name, tag } of tags) upsert.run(name, tag, digest, now);
    })();
    await this.writeLayoutIndex();
  }

  /** The next sequential version number for a name (1 for a new name). */
  nextVersion(name: string): number {
    const rows = this.db.prepare(`SELECT tag FROM tags WHERE name = ?`).all(name) as { tag: string }[];
    let max = 0;
    for (const { tag } of rows) if (/^\d+$/.test(tag)) max = Math.max(max, Number(tag));
    return max + 1;
  }

  /** The tags of one name, newest first. */
  tagsOf(name: string): TagRecord[] {
    return (this.db.prepare(`SELECT * FROM tags WHERE name = ? ORDER BY updated_at DESC, tag DESC`).all(name) as Array<Record<string, string>>).map(toTag);
  }

  /** Every tag. */
  listTags(): TagRecord[] {
    return (this.db.prepare(`SELECT * FROM tags ORDER BY name, updated_at DESC, tag DESC`).all() as Array<Record<string, string>>).map(toTag);
  }

  /** Every image, newest first, with its tags. */
  listImages(): ImageRecord[] {
    const rows = this.db.prepare(`SELECT * FROM images ORDER BY created_at DESC, digest`).all() as ImageRow[];
    return rows.map((row) => this.toRecord(row));
  }

  /**
   * Removes a reference. A tag reference removes that tag; a digest reference removes the
   * image and, with `force`, its tags (without `force`, a tagged image is refused).
   * Returns the digest of the image whose record was deleted, if any. Blobs go at the next gc.
   */
  async remove(reference: string, options: { force?: boolean } = {}): Promise<{ untagged: string[]; deleted: Digest | undefined }> {
    const { digest, tag } = this.lookup(reference);
    const untagged: string[] = [];
    if (tag) {
      this.db.prepare(`DELETE FROM tags WHERE name = ? AND tag = ?`).run(tag.name, tag.tag);
      untagged.push(`${tag.name}:${tag.tag}`);
    } else {
      const tags = this.tagsOfDigest(digest);
      if (tags.length > 0 && !options.force) {
        throw new ImageError(`image ${digest} is tagged ${tags.join(', ')}: remove the tags or use --force`, { badInput: true });
      }
      this.db.prepare(`DELETE FROM tags WHERE digest = ?`).run(digest);
      untagged.push(...tags);
    }
    let deleted: Digest | undefined;
    if (this.tagsOfDigest(digest).length === 0 && !this.isPinned(digest)) {
      this.db.prepare(`DELETE FROM images WHERE digest = ?`).run(digest);
      deleted = digest;
    }
    await this.writeLayoutIndex();
    return { untagged, deleted };
  }

  /** The `name:tag` strings pointing at a digest. */
  tagsOfDigest(digest: Digest): string[] {
    return (this.db.prepare(`SELECT name, tag FROM tags WHERE digest = ? ORDER BY name, tag`).all(digest) as { name: string; tag: string }[]).map(
      (r) => `${r.name}:${r.tag}`,
    );
  }

  /**
   * Digests that must never be collected: every tagged image, and every image a release
   * refers to (the releases table arrives with deploys; this is the one place that lists roots).
   */
  rootDigests(): Set<Digest> {
    const roots = new Set<Digest>();
    for (const row of this.db.prepare(`SELECT DISTINCT digest FROM tags`).all() as { digest: Digest }[]) roots.add(row.digest);
    const hasReleases = this.db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'releases'`).get();
    if (hasReleases) {
      for (const row of this.db.prepare(`SELECT DISTINCT digest FROM releases`).all() as { digest: Digest }[]) roots.add(row.digest);
    }
    return roots;
  }

  /** An artifact manifest's blobs with their sizes: itself, its config, its layers (a signature's envelope). */
  async artifactBlobs(manifest: Digest): Promise<Array<[Digest, number]>> {
    const bytes = await this.blobs.read(manifest);
    const parsed = JSON.parse(bytes.toString('utf8')) as Manifest;
    return [[manifest, bytes.length], [parsed.config.digest, parsed.config.size], ...parsed.layers.map((l): [Digest, number] => [l.digest, l.size])];
  }

  /** The artifact manifests stored that refer to `digest` (its signatures), oldest first. */
  referrersOf(digest: Digest): Digest[] {
    return (this.db.prepare('SELECT manifest FROM signatures WHERE subject = ? ORDER BY created_at, manifest').all(digest) as Array<{ manifest: Digest }>).map((r) => r.manifest);
  }

  private isPinned(digest: Digest): boolean {
    return this.rootDigests().has(digest);
  }

  /**
   * Garbage collection: forgets untagged, unreleased images, then deletes every blob no kept
   * image refers to. Blobs younger than `graceMs` are kept, so a bake or import in flight is safe.
   */
  async gc(options: { graceMs?: number; dryRun?: boolean } = {}): Promise<GcResult> {
    const release = this.lease('gc');
    try {
      return await this.collect(options);
    } finally {
      release();
    }
  }

  private async collect(options: { graceMs?: number; dryRun?: boolean }): Promise<GcResult> {
    const graceMs = options.graceMs ?? 10 * 60_000;
    const roots = this.rootDigests();
    const removedImages: Digest[] = [];
    for (const image of this.listImages()) {
      if (!roots.has(image.digest)) removedImages.push(image.digest);
    }
    if (!options.dryRun) {
      const del = this.db.prepare(`DELETE FROM images WHERE digest = ?`);
      this.db.transaction(() => removedImages.forEach((d) => del.run(d)))();
    }
    const live = new Set<Digest>();
    for (const digest of roots) {
      if (!(await this.blobs.has(digest))) continue;
      live.add(digest);
      const manifest = await this.manifest(digest);
      live.add(manifest.config.digest);
      for (const layer of manifest.layers) live.add(layer.digest);
      // An image's signatures (artifacts referring to it) go with it; a broken one is verify's to report, and costs gc nothing.
      for (const referrer of this.referrersOf(digest)) {
        live.add(referrer);
        for (const [blob] of await this.artifactBlobs(referrer).catch(() => [])) live.add(blob);
      }
    }
    // The signatures of images no longer recorded (removed now, or by `image rm` before) go with them.
    if (!options.dryRun) this.db.prepare('DELETE FROM signatures WHERE subject NOT IN (SELECT digest FROM images)').run();
    let removedBlobs = 0;
    let freedBytes = 0;
    const now = Date.now();
    for (const digest of await this.blobs.list()) {
      if (live.has(digest)) continue;
      const info = await stat(this.blobs.path(digest)).catch(() => undefined);
      if (!info || now - info.mtimeMs < graceMs) continue;
      if (!options.dryRun) await this.blobs.delete(digest);
      removedBlobs++;
      freedBytes += info.size;
    }
    if (!options.dryRun) {
      const entries = this.db.prepare(`SELECT key, digest FROM layer_cache`).all() as { key: string; digest: Digest }[];
      const del = this.db.prepare(`DELETE FROM layer_cache WHERE key = ?`);
      for (const entry of entries) if (!(await this.blobs.has(entry.digest))) del.run(entry.key);
    }
    return { removedImages, removedBlobs, freedBytes, keptImages: roots.size };
  }

  /**
   * Registers work in flight on the store and returns the function that ends it. Bakes and
   * imports may run side by side; gc runs alone, so it never deletes a blob that a bake
   * in flight has just reused or written. Leases of dead processes are dropped.
   */
  lease(kind: 'bake' | 'import' | 'gc'): () => void {
    const host = hostname();
    const id = this.db.transaction(() => {
      const rows = this.db.prepare(`SELECT id, kind, pid, host FROM leases`).all() as { id: number; kind: string; pid: number; host: string }[];
      const live = rows.filter((row) => {
        if (row.host === host && !isAlive(row.pid)) {
          this.db.prepare(`DELETE FROM leases WHERE id = ?`).run(row.id);
          return false;
        }
        return true;
      });
      const blocking = live.filter((row) => (kind === 'gc' ? true : row.kind === 'gc'));
      if (blocking.length > 0) {
        const what = blocking.map((row) => `${row.kind} (pid ${row.pid} on ${row.host})`).join(', ');
        throw new ImageError(`cannot ${kind === 'gc' ? 'collect garbage' : kind} now: ${what} is running on this store; try again when it ends`);
      }
      return Number(this.db.prepare(`INSERT INTO leases (kind, pid, host, started_at) VALUES (?, ?, ?, ?)`).run(kind, process.pid, host, new Date().toISOString()).lastInsertRowid);
    }).immediate();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.db.prepare(`DELETE FROM leases WHERE id = ?`).run(id);
    };
  }

  /** Looks up a layer cache entry whose blob is still present. */
  async cacheGet(key: string): Promise<CachedLayer | undefined> {
    const row = this.db.prepare(`SELECT * FROM layer_cache WHERE key = ?`).get(key) as Record<string, string | number> | undefined;
    if (!row) return undefined;
    const layer: CachedLayer = { digest: row.digest as Digest, diffId: row.diff_id as Digest, size: Number(row.size), mediaType: String(row.media_type) };
    if ((await this.blobs.size(layer.digest)) !== layer.size) {
      this.db.prepare(`DELETE FROM layer_cache WHERE key = ?`).run(key);
      return undefined;
    }
    this.db.prepare(`UPDATE layer_cache SET used_at = ? WHERE key = ?`).run(new Date().toISOString(), key);
    return layer;
  }

  /** Records the layer a bake step produced. */
  cachePut(key: string, layer: CachedLayer): void {
    const now = new Date().toISOString();
    this.db
      .prepare(
        `INSERT INTO layer_cache (key, digest, diff_id, size, media_type, created_at, used_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(key) DO UPDATE SET digest = excluded.digest, diff_id = excluded.diff_id, size = excluded.size,
         media_type = excluded.media_type, used_at = excluded.used_at`,
      )
      .run(key, layer.digest, layer.diffId, layer.size, layer.mediaType, now, now);
  }

  /**
   * Rewrites the OCI layout's index.json from the tags table (temp file + rename): one query
   * for the tags of recorded images, and each image's manifest read once for its size and
   * media type (an imported manifest is kept byte-identical and may carry docker's).
   */
  async writeLayoutIndex(): Promise<void> {
    const rows = this.db
      .prepare(
        `SELECT tags.name, tags.tag, tags.digest FROM tags JOIN images ON images.digest = tags.digest
         ORDER BY tags.name, tags.updated_at DESC, tags.tag DESC`,
      )
      .all() as { name: string; tag: string; digest: Digest }[];
    const manifests = new Map<Digest, { mediaType: string; size: number }>();
    const index: Index = { schemaVersion: 2, mediaType: MediaType.index, manifests: [] };
    for (const { name, tag, digest } of rows) {
      let manifest = manifests.get(digest);
      if (!manifest) {
        const bytes = await this.blobs.read(digest).catch(() => undefined);
        let mediaType: string = MediaType.manifest;
        try {
          mediaType = (JSON.parse(bytes?.toString('utf8') ?? '{}') as Partial<Manifest>).mediaType ?? mediaType;
        } catch {
          // a broken manifest is fsck's to report; the index still names the tag
        }
        manifest = { mediaType, size: bytes?.length ?? 0 };
        manifests.set(digest, manifest);
      }
      index.manifests.push({ mediaType: manifest.mediaType, digest, size: manifest.size, annotations: { 'org.opencontainers.image.ref.name': `${name}:${tag}` } });
    }
    // Each tagged image's signatures, as the OCI layout lists referrers: by digest, with their artifact type, never by name.
    for (const digest of manifests.keys()) {
      for (const referrer of this.referrersOf(digest)) {
        const size = await this.blobs.size(referrer);
        if (size !== undefined) index.manifests.push({ mediaType: MediaType.manifest, artifactType: 'application/vnd.dsse.envelope.v1+json', digest: referrer, size });
      }
    }
    const tmp = this.blobs.tempPath('index');
    await writeFile(tmp, JSON.stringify(index, null, 2));
    await rename(tmp, join(this.blobs.root, 'index.json'));
  }

  /**
   * Removes temp files and sandbox roots left behind by writers that no longer run. A
   * failure to remove one is a warning for later, never a reason the store cannot open.
   */
  async clearStaleTemp(): Promise<{ removed: number; failed: string[] }> {
    const dir = join(this.blobs.root, 'tmp');
    let removed = 0;
    const failed: string[] = [];
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const pid = Number(/-(\d+)-[a-f0-9]+$/.exec(name)?.[1]);
      if (pid === process.pid || (pid && isAlive(pid))) continue;
      try {
        await removeTree(join(dir, name));
        removed++;
      } catch (error) {
        failed.push(`${join(dir, name)}: ${(error as Error).message}`);
      }
    }
    return { removed, failed };
  }

  private toRecord(row: ImageRow): ImageRecord {
    return {
      digest: row.digest as Digest,
      configDigest: row.config_digest as Digest,
      size: row.size,
      source: row.source as ImageSource,
      createdAt: row.created_at,
      provenance: row.provenance ? (JSON.parse(row.provenance) as Record<string, unknown>) : undefined,
      tags: this.tagsOfDigest(row.digest as Digest),
    };
  }
}

function toTag(row: Record<string, string>): TagRecord {
  return { name: row.name!, tag: row.tag!, digest: row.digest as Digest, updatedAt: row.updated_at! };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}


import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex, type Digest } from '../../oci/digest.js';
import type { ImageStore } from '../../store/image-store.js';
import { appDrift, intrudersIn, ownNamespaces, processTable } from './process-drift.js';
import { checkRootfs, layerManifest, type ManifestEntry, type RootfsManifest, type StatBaseline } from './rootfs-manifest.js';

/** How often each kind of evidence is gathered. */
export interface DriftSchedule {
  /** Processes (intruders, executable, environment): default every 1 s. */
  processesEveryMs: number;
  /** A stat pass over each root filesystem in use: default every 10 s. */
  statEveryMs: number;
  /** A full re-hash of each root filesystem in use: default every hour (and once when first used). */
  rehashEveryMs: number;
}

export const DEFAULT_DRIFT_SCHEDULE: DriftSchedule = { processesEveryMs: 1_000, statEveryMs: 10_000, rehashEveryMs: 3_600_000 };

/** An instance as the scanner looks at it. */
export interface ScannedInstance {
  id: string;
  digest: Digest;
  appPid: number;
  running: boolean;
  /** The root filesystem it runs from. */
  root: string;
  /** The environment it was started with (absent in records older than the guard). */
  env?: Array<[string, string]> | undefined;
}

interface RootState {
  digest: Digest;
  manifest: Promise<RootfsManifest>;
  baseline: StatBaseline;
  lastStat: number;
  lastFull: number;
  findings: string[];
}

/**
 * Finds what was done to process instances from outside imago, by what this machine shows:
 * processes in an instance's namespaces that imago did not start (nsenter), an app whose
 * executable or environment is not its release's, and a root filesystem that no longer
 * matches its image's layers (a stat pass often, a full re-hash on a schedule). Each finding
 * is kept, with the time it was found, in `<instances>/<id>.drift` (so it outlives a restart
 * of imago), and `onChange` is told. Scans run in the background: `poke` never waits.
 */
export class DriftScanner {
  private readonly lines = new Map<string, string[]>();
  /** By root folder (a drifted one moved aside is its own). */
  private readonly roots = new Map<string, RootState>();
  private readonly manifests = new Map<Digest, Promise<RootfsManifest>>();
  private lastProcesses = 0;
  private closed = false;
  private running: Promise<void> | undefined;
  private self: Promise<{ pidNs: string | undefined; mntNs: string | undefined }> | undefined;

  constructor(
    private readonly store: ImageStore,
    private readonly dirs: { instances: string; rootfs: string },
    private readonly onChange: (id: string) => void,
    private readonly schedule: DriftSchedule = DEFAULT_DRIFT_SCHEDULE,
    /** Told when a root filesystem drifted: the provider moves it aside (replacements must not inherit it). */
    private readonly onRootDrift: (root: string, digest: Digest) => Promise<void> = async () => undefined,
  ) {}

  /** The drift found so far for an instance, oldest first (read from its file the first time). */
  async of(id: string): Promise<string[]> {
    let lines = this.lines.get(id);
    if (!lines) {
      const text = await readFile(this.file(id), 'utf8').catch(() => '');
      lines = text.split('\n').filter(Boolean);
      this.lines.set(id, lines);
    }
    return [...lines];
  }

  /** Starts a scan of `instances` when one is due and none runs. */
  poke(instances: ScannedInstance[]): void {
    if (this.running || this.closed) return;
    this.running = this.scan(instances)
      .catch(() => undefined) // a scan that fails is tried again at the next poke
      .finally(() => (this.running = undefined));
  }

  /** Scans what is due now (all of it with `force`), and waits for it. */
  async scan(instances: ScannedInstance[], options: { force?: boolean } = {}): Promise<void> {
    const now = Date.now();
    const live = instances.filter((i) => i.running);
    if (options.force || now - this.lastProcesses >= this.schedule.processesEveryMs) {
      this.lastProcesses = now;
      const table = await processTable();
      this.self ??= ownNamespaces();
      const self = await this.self;
      for (const instance of live) {
        const manifest = await this.loadedManifest(instance.digest);
        const imageHas = (path: string) => (manifest ? isImageFile(manifest, path) : undefined);
        const found = [...intrudersIn(table, instance.appPid, self), ...(await appDrift(instance.appPid, { env: instance.env, imageHas }))];
        await this.add(instance.id, found);
      }
    }
    for (const path of new Set(live.map((i) => i.root))) {
      const instances = live.filter((i) => i.root === path);
      const root = this.rootState(path, instances[0]!.digest);
      const full = options.force || root.lastFull === 0 || now - root.lastFull >= this.schedule.rehashEveryMs;
      if (!full && now - root.lastStat < this.schedule.statEveryMs) continue;
      const check = await checkRootfs(path, await root.manifest, { rehash: full, baseline: root.baseline });
      root.lastStat = now;
      if (full) root.lastFull = now;
      const fresh = root.findings.length === 0 && check.findings.length > 0;
      root.findings = check.findings.map((line) => `root filesystem: ${line}`);
      for (const instance of instances) await this.add(instance.id, root.findings);
      if (fresh) await this.onRootDrift(path, root.digest);
    }
  }

  /** Stops scanning, once the scan in progress (if any) ended. */
  async close(): Promise<void> {
    this.closed = true;
    await this.running;
  }

  /** Forgets a destroyed instance's findings. */
  async forget(id: string): Promise<void> {
    this.lines.delete(id);
    await rm(this.file(id), { force: true });
  }

  private file(id: string): string {
    return join(this.dirs.instances, `${id}.drift`);
  }

  /** Adds the findings not seen before (compared without their times), each stamped with now. */
  private async add(id: string, found: string[]): Promise<void> {
    const lines = await this.of(id);
    const known = new Set(lines.map((line) => line.slice(25)));
    const fresh = found.filter((text) => !known.has(text));
    if (fresh.length === 0) return;
    const at = new Date().toISOString();
    const all = [...lines, ...fresh.map((text) => `${at} ${text}`)];
    this.lines.set(id, all);
    await mkdir(this.dirs.instances, { recursive: true });
    const tmp = `${this.file(id)}.tmp`;
    await writeFile(tmp, `${all.join('\n')}\n`);
    await rename(tmp, this.file(id));
    this.onChange(id);
  }

  private rootState(path: string, digest: Digest): RootState {
    let root = this.roots.get(path);
    if (!root) {
      root = { digest, manifest: this.manifest(digest), baseline: new Map(), lastStat: 0, lastFull: 0, findings: [] };
      root.manifest.catch(() => this.roots.delete(path));
      this.roots.set(path, root);
    }
    return root;
  }

  /** An image's manifest, computed once per digest. */
  private manifest(digest: Digest): Promise<RootfsManifest> {
    let manifest = this.manifests.get(digest);
    if (!manifest) {
      manifest = this.manifestOf(digest);
      manifest.catch(() => this.manifests.delete(digest));
      this.manifests.set(digest, manifest);
    }
    return manifest;
  }

  /** The manifest when it is ready; undefined while it is computed (the first scan starts it). */
  private async loadedManifest(digest: Digest): Promise<RootfsManifest | undefined> {
    return Promise.race([this.manifest(digest), new Promise<undefined>((resolve) => setImmediate(() => resolve(undefined)))]).catch(() => undefined);
  }

  /** An image's manifest: from its layers the first time, then from `<rootfs>/<hex>.manifest.v1.json`. */
  private async manifestOf(digest: Digest): Promise<RootfsManifest> {
    const file = join(this.dirs.rootfs, `${digestHex(digest)}.manifest.v1.json`);
    const cached = await readFile(file, 'utf8').then((text) => JSON.parse(text) as Array<[string, ManifestEntry]>, () => undefined);
    if (cached) return new Map(cached);
    const manifest = await layerManifest(this.store, digest);
    await mkdir(this.dirs.rootfs, { recursive: true });
    await writeFile(`${file}.tmp`, JSON.stringify([...manifest]));
    await rename(`${file}.tmp`, file);
    return manifest;
  }
}

/** Whether an absolute path inside the instance is a file of its image (following the image's own symlinks in its folders). */
function isImageFile(manifest: RootfsManifest, path: string): boolean {
  let rel = path.replace(/^\/+/, '');
  for (let hops = 0; hops < 40; hops++) {
    const entry = manifest.get(rel);
    if (entry?.type === 'file') return true;
    // A folder on the way may be a symlink in the image (bin -> usr/bin): resolve the first one found.
    const parts = rel.split('/');
    let resolved: string | undefined;
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      const link = manifest.get(prefix);
      if (link?.type === 'symlink' && link.link) {
        const target = link.link.startsWith('/') ? link.link.slice(1) : [...parts.slice(0, i - 1), link.link].join('/');
        resolved = [target, ...parts.slice(i)].join('/').replace(/\/+/g, '/');
        break;
      }
    }
    if (!resolved) return false;
    rel = resolved;
  }
  return false;
}

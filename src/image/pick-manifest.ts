import type { Descriptor } from '../oci/types.js';
import { normaliseImageName, unique } from './import-tags.js';

/** An image manifest an index offers, with the annotations of the entry that led to it. */
export interface ManifestCandidate {
  descriptor: Descriptor;
  /** The index.json entry's annotations (for a nested index, the outer entry's). */
  annotations: Record<string, string>;
}

/** The manifest an import takes, with the names the archive gives it. */
export interface ManifestChoice {
  descriptor: Descriptor;
  refNames: string[];
  imageNames: string[];
  warnings: string[];
}

/** The platform an import wants: the host's architecture (OCI names) and CPU variant, when known. */
export interface HostPlatform {
  architecture: string;
  variant?: string;
}

const REF_NAME = 'org.opencontainers.image.ref.name';
const IMAGE_NAME = 'io.containerd.image.name';

/** The OCI CPU variant of this host (`v7` on 32-bit arm, `v8` on arm64), when Node knows it. */
export function hostVariant(arch: string = process.arch): string | undefined {
  if (arch === 'arm64') return 'v8';
  const armVersion = (process.config.variables as unknown as Record<string, unknown>).arm_version;
  return arch === 'arm' && armVersion !== undefined ? `v${String(armVersion)}` : undefined;
}

/**
 * Chooses the one image to import among an index's manifests. Attestations (platform
 * unknown/unknown) and artifacts (an `artifactType`: signatures, SBOMs) are left out. Each image (the manifests that share the archive's names for
 * them) gives one build: its linux one for the host's architecture (the host's variant, else
 * the one without a variant, else the first), else its platformless one, else its linux/amd64
 * one. Several different images need `requested` to say which (matched against their names).
 */
export function pickManifest(candidates: ManifestCandidate[], options: HostPlatform & { requested?: string }): ManifestChoice | { error: string } {
  const images = candidates.filter((c) => c.descriptor.platform?.os !== 'unknown' && c.descriptor.artifactType === undefined);
  if (images.length === 0) return { error: 'the archive holds no image manifest' };
  const platforms = unique(images.filter((c) => c.descriptor.platform).map((c) => formatPlatform(c.descriptor)));

  const eligible = [...byNames(images).values()].flatMap((image) => hostBuild(image, options));
  if (eligible.length === 0) {
    const wanted = unique([`linux/${options.architecture}`, 'linux/amd64']).join(' or ');
    return { error: `the archive has no ${wanted} image (it has ${platforms.join(', ')})` };
  }

  let groups = groupByDigest(eligible);
  if (groups.length > 1 && options.requested) {
    const wanted = normaliseImageName(options.requested);
    const named = groups.filter((g) => [...g.refNames, ...g.imageNames].some((n) => normaliseImageName(n) === wanted));
    if (named.length > 0) groups = named;
  }
  if (groups.length > 1) {
    const list = groups.map((g) => [...g.refNames, ...g.imageNames][0] ?? g.descriptor.digest).join(', ');
    return { error: `the archive holds ${groups.length} images (${list}): imago imports one at a time, choose it with --tag <name:tag>` };
  }
  const chosen = groups[0]!;
  const warnings = platforms.length > 1 && chosen.descriptor.platform ? [`picked ${formatPlatform(chosen.descriptor)} of the archive's platforms (${platforms.join(', ')})`] : [];
  return { ...chosen, warnings };
}

/** Candidates by the names the archive gives them: the builds of one image share them. */
function byNames(candidates: ManifestCandidate[]): Map<string, ManifestCandidate[]> {
  const images = new Map<string, ManifestCandidate[]>();
  for (const candidate of candidates) {
    const key = JSON.stringify([candidate.annotations[REF_NAME] ?? '', candidate.annotations[IMAGE_NAME] ?? '']);
    const image = images.get(key);
    if (image) image.push(candidate);
    else images.set(key, [candidate]);
  }
  return images;
}

/** The build of one image an import takes (see pickManifest); several only when they cannot be told apart. */
function hostBuild(image: ManifestCandidate[], host: HostPlatform): ManifestCandidate[] {
  const onArch = (architecture: string) => image.filter((c) => c.descriptor.platform?.os === 'linux' && c.descriptor.platform.architecture === architecture);
  const native = onArch(host.architecture);
  if (native.length > 0) return oneVariant(native, host.variant);
  const platformless = image.filter((c) => !c.descriptor.platform);
  if (platformless.length > 0) return platformless;
  return oneVariant(onArch('amd64'), undefined);
}

/** Among builds of one architecture: the `wanted` variant if there, else the one without a variant, else the first. */
function oneVariant(builds: ManifestCandidate[], wanted: string | undefined): ManifestCandidate[] {
  const variants = builds.map((c) => c.descriptor.platform?.variant);
  const variant = wanted !== undefined && variants.includes(wanted) ? wanted : variants.includes(undefined) ? undefined : variants[0];
  return builds.filter((c) => c.descriptor.platform?.variant === variant);
}

function groupByDigest(candidates: ManifestCandidate[]): Array<Omit<ManifestChoice, 'warnings'>> {
  const groups = new Map<string, Omit<ManifestChoice, 'warnings'>>();
  for (const { descriptor, annotations } of candidates) {
    let group = groups.get(descriptor.digest);
    if (!group) {
      group = { descriptor, refNames: [], imageNames: [] };
      groups.set(descriptor.digest, group);
    }
    const refName = annotations[REF_NAME];
    const imageName = annotations[IMAGE_NAME];
    if (refName && !group.refNames.includes(refName)) group.refNames.push(refName);
    if (imageName && !group.imageNames.includes(imageName)) group.imageNames.push(imageName);
  }
  return [...groups.values()];
}

function formatPlatform(descriptor: Descriptor): string {
  const p = descriptor.platform!;
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

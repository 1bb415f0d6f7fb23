import type { Descriptor } from '../oci/types.js';
import { normaliseImageName } from './import-tags.js';

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

const REF_NAME = 'org.opencontainers.image.ref.name';
const IMAGE_NAME = 'io.containerd.image.name';

/** The OCI architecture name of a Node `process.arch` (`x64` is `amd64`). */
export function hostArchitecture(arch: string = process.arch): string {
  const names: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return names[arch] ?? arch;
}

/**
 * Chooses the one image to import among an index's manifests: attestations
 * (platform unknown/unknown) are left out, a multi-platform image gives its linux build for
 * `architecture` (else linux/amd64), and several different images need `requested` to say
 * which (matched against their names).
 */
export function pickManifest(candidates: ManifestCandidate[], options: { architecture: string; requested?: string }): ManifestChoice | { error: string } {
  const warnings: string[] = [];
  const images = candidates.filter((c) => c.descriptor.platform?.os !== 'unknown');
  if (images.length === 0) return { error: 'the archive holds no image manifest' };

  let eligible = images;
  const platforms = images.filter((c) => c.descriptor.platform).map((c) => formatPlatform(c.descriptor));
  if (platforms.length > 0) {
    const onArch = (arch: string) => images.filter((c) => !c.descriptor.platform || (c.descriptor.platform.os === 'linux' && c.descriptor.platform.architecture === arch));
    eligible = onArch(options.architecture);
    if (!eligible.some((c) => c.descriptor.platform)) eligible = onArch('amd64');
    if (!eligible.some((c) => c.descriptor.platform)) {
      const wanted = unique([`linux/${options.architecture}`, 'linux/amd64']).join(' or ');
      return { error: `the archive has no ${wanted} image (it has ${unique(platforms).join(', ')})` };
    }
    const picked = eligible.find((c) => c.descriptor.platform);
    if (unique(platforms).length > 1 && picked) warnings.push(`picked ${formatPlatform(picked.descriptor)} of the archive's platforms (${unique(platforms).join(', ')})`);
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
  return { ...chosen, warnings };
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

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

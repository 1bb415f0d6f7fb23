import { isImageName, isTag, parseImageRef } from '../oci/reference.js';

/** The names an archive gives its image, gathered from wherever the format keeps them. */
export interface FoundNames {
  /** `org.opencontainers.image.ref.name` values: a full `name:tag`, or only a tag (`1.0`). */
  refNames: string[];
  /** `io.containerd.image.name` values (`docker.io/library/web:1`). */
  imageNames: string[];
  /** docker's manifest.json RepoTags (`web:1`). */
  repoTags: string[];
}

/** The tags an import applies, or why it cannot choose. */
export type ImportTags = { tags: string[]; warnings: string[] } | { error: string };

/** Docker's implied registry, left out of names in imago's store (`docker.io/library/web` is `web`). */
export function normaliseImageName(reference: string): string {
  return reference.replace(/^docker\.io\/library\//, '').replace(/^docker\.io\//, '');
}

/** True when a reference ends in an explicit `:tag` (a `:` after the last `/`). */
export function hasExplicitTag(reference: string): boolean {
  return /:[^/]*$/.test(reference.split('@')[0] ?? reference);
}

/**
 * Decides the `name:tag`s of an imported image. A `requested` `name:tag` overrides the
 * archive; a requested bare name takes the archive's tags (`latest` when it has none).
 * Without a request, full names from the archive are used; an archive that names its image
 * only by tag needs a name from the caller. No names at all is not an error: the image is
 * imported untagged, with a warning.
 */
export function resolveImportTags(found: FoundNames, requested?: string): ImportTags {
  const warnings: string[] = [];
  const fullRefs: string[] = [];
  const bareTags: string[] = [];
  for (const raw of [...found.imageNames, ...found.repoTags, ...found.refNames]) {
    const value = normaliseImageName(raw.trim());
    if (!value.includes(':') && !value.includes('/') && isTag(value)) {
      bareTags.push(value);
      continue;
    }
    const ref = parseImageRef(value);
    if ('error' in ref || ref.kind !== 'tag') {
      warnings.push(`ignored the archive's name '${raw}': ${'error' in ref ? ref.error : 'a digest is not a tag'}`);
      continue;
    }
    fullRefs.push(`${ref.name}:${ref.tag}`);
  }

  if (requested !== undefined) {
    if (hasExplicitTag(requested)) {
      const ref = parseImageRef(requested);
      if ('error' in ref || ref.kind !== 'tag') return { error: `invalid tag '${requested}': ${'error' in ref ? ref.error : 'expected name:tag'}` };
      return { tags: [`${ref.name}:${ref.tag}`], warnings };
    }
    if (!isImageName(requested)) return { error: `invalid tag '${requested}': expected an image name like "web" or a "name:tag"` };
    const tags = unique([...bareTags, ...fullRefs.map((ref) => ref.slice(ref.lastIndexOf(':') + 1))]);
    return { tags: (tags.length > 0 ? tags : ['latest']).map((tag) => `${requested}:${tag}`), warnings };
  }

  if (fullRefs.length > 0) return { tags: unique(fullRefs), warnings };
  if (bareTags.length > 0) {
    return { error: `the archive names its image only by tag (${unique(bareTags).map((t) => `'${t}'`).join(', ')}): give a name, e.g. --tag web or --tag web:${bareTags[0]}` };
  }
  warnings.push('the archive gives its image no name: imported untagged (refer to it by digest, or import again with --tag)');
  return { tags: [], warnings };
}

/** The values, each once, in first-seen order. */
export function unique(values: string[]): string[] {
  return [...new Set(values)];
}

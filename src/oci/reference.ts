import { isDigest, type Digest } from './digest.js';

/** A parsed image reference: a name with a tag, a name pinned to a digest, or a bare digest. */
export type ImageRef =
  | { kind: 'tag'; name: string; tag: string }
  | { kind: 'digest'; name?: string; digest: Digest };

const NAME_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** True when `name` is a valid image name (lowercase, `.`, `_`, `-` separators, `/` paths). */
export function isImageName(name: string): boolean {
  return name.length <= 255 && NAME_RE.test(name);
}

/** True when `tag` is a valid tag. */
export function isTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

/**
 * Parses `name`, `name:tag`, `name@sha256:…` or `sha256:…`; a bare name means `name:latest`.
 * Returns an error message instead of throwing, so callers can say where the bad value came from.
 */
export function parseImageRef(input: string): ImageRef | { error: string } {
  // Docker Hub's long names are the short ones here: docker.io/library/web is web.
  const value = input.trim().replace(/^(?:docker\.io|index\.docker\.io)\/(?:library\/)?/, '');
  if (value.startsWith('sha256:')) {
    return isDigest(value) ? { kind: 'digest', digest: value } : { error: `expected sha256:<64 lowercase hex digits>, got "${input}"` };
  }
  const at = value.indexOf('@');
  if (at >= 0) {
    const name = value.slice(0, at);
    const digest = value.slice(at + 1);
    if (!isImageName(name)) return { error: `expected an image name like "web" or "team/web", got "${name}"` };
    if (!isDigest(digest)) return { error: `expected sha256:<64 lowercase hex digits> after "@", got "${digest}"` };
    return { kind: 'digest', name, digest };
  }
  const colon = value.lastIndexOf(':');
  const name = colon > 0 ? value.slice(0, colon) : value;
  const tag = colon > 0 ? value.slice(colon + 1) : 'latest';
  if (!isImageName(name)) return { error: `expected an image reference like "web", "web:1.4" or "sha256:…", got "${input}"` };
  if (!isTag(tag)) return { error: `expected a tag of letters, digits, "_", "." or "-", got "${tag}"` };
  return { kind: 'tag', name, tag };
}

/** Formats a reference back to its canonical text. */
export function formatImageRef(ref: ImageRef): string {
  if (ref.kind === 'tag') return `${ref.name}:${ref.tag}`;
  return ref.name ? `${ref.name}@${ref.digest}` : ref.digest;
}

/**
 * What a bake says it made: an in-toto statement (v1) about the image's manifest digest, with
 * an SLSA provenance predicate (v1): from which spec, context and base, by which imago, when.
 * Pure.
 */
import { digestHex, isDigest, type Digest } from '../oci/digest.js';

/** The statement's and predicate's types. */
export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const SLSA_PROVENANCE = 'https://slsa.dev/provenance/v1';
/** What kind of build made it: imago's bake. */
export const BUILD_TYPE = 'https://imago.dev/bake/v1';

/** What a bake knows of what it made. */
export interface BakeFacts {
  name: string;
  digest: Digest;
  /** sha256 of the normalised image spec. */
  spec: string;
  /** sha256 over the copied files' digests, or `none`. */
  context: string;
  /** The base: an image digest, `scratch`, or the host executables it took. */
  base: string;
  imagoVersion: string;
  startedOn: string;
  finishedOn: string;
  gitCommit?: string | undefined;
  gitDirty?: boolean | undefined;
}

/** The in-toto statement of a bake. */
export function provenanceStatement(facts: BakeFacts): Record<string, unknown> {
  const dependency = (name: string, value: string) => (isDigest(value) ? { name, digest: { sha256: digestHex(value) } } : { name, uri: value });
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name: facts.name, digest: { sha256: digestHex(facts.digest) } }],
    predicateType: SLSA_PROVENANCE,
    predicate: {
      buildDefinition: {
        buildType: BUILD_TYPE,
        externalParameters: { image: facts.name, spec: facts.spec },
        internalParameters: { imagoVersion: facts.imagoVersion },
        resolvedDependencies: [
          dependency('context', facts.context),
          dependency('base', facts.base),
          ...(facts.gitCommit ? [{ name: 'git', uri: `git+commit:${facts.gitCommit}`, annotations: { dirty: Boolean(facts.gitDirty) } }] : []),
        ],
      },
      runDetails: {
        builder: { id: `https://imago.dev/imago@${facts.imagoVersion}` },
        metadata: { startedOn: facts.startedOn, finishedOn: facts.finishedOn },
      },
    },
  };
}

/** The sha256 digests a statement's subjects name (`sha256:<hex>`). */
export function subjectsOf(statement: unknown): Digest[] {
  const subjects = (statement as { subject?: unknown } | undefined)?.subject;
  if (!Array.isArray(subjects)) return [];
  return subjects.map((s) => `sha256:${String((s as { digest?: { sha256?: unknown } })?.digest?.sha256)}`).filter(isDigest);
}

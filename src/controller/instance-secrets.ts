import type { ServiceSpec } from '../config/types.js';
import type { InstanceSecret } from '../providers/provider.js';
import { secretsKey } from '../secrets/seal.js';
import { secretValue } from '../state/secrets.js';
import type { Release } from '../state/types.js';
import type { Db } from '../store/db.js';

/**
 * The secrets an instance of `release` starts with: each of the spec's, at the version the
 * release recorded, opened just before the provider is asked to start it and held nowhere else.
 */
export function secretsFor(db: Db, home: string, spec: ServiceSpec, release: Pick<Release, 'secrets'>): InstanceSecret[] {
  if (!spec.secrets || spec.secrets.length === 0) return [];
  const recorded = release.secrets;
  if (!recorded) throw new Error('the release records no secret versions, and its spec uses secrets');
  const key = secretsKey(home);
  return spec.secrets.map((s) => {
    const version = recorded.versions[s.name];
    if (version === undefined) throw new Error(`the release records no version of secret "${s.name}"`);
    return { ...s, value: secretValue(db, key, recorded.env, s.name, version) };
  });
}

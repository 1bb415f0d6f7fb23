import { DEFAULTS } from '../config/normalise.js';
import type { ServiceSpec } from '../config/types.js';
import type { Digest } from '../oci/digest.js';
import { Label, type InstanceSecret, type InstanceSpec } from '../providers/provider.js';

/** Builds what a provider needs to start one instance of a release. Pure. */
export function instanceSpecFor(
  service: ServiceSpec,
  release: { id: number; digest: Digest },
  options: { id: string; port: number; env: string; imagePort?: number | undefined; secrets?: InstanceSecret[] },
): InstanceSpec {
  return {
    id: options.id,
    digest: release.digest,
    labels: {
      [Label.service]: service.name,
      [Label.release]: String(release.id),
      [Label.env]: options.env,
      [Label.digest]: release.digest,
    },
    port: options.port,
    ...(service.port ?? options.imagePort ? { appPort: (service.port ?? options.imagePort)! } : {}),
    env: service.env,
    volumes: Object.entries(service.volumes).map(([name, path]) => ({ name, path })),
    // Releases recorded before limits existed have none: they get the defaults.
    resources: service.resources ?? { ...DEFAULTS.service.resources },
    ...(options.secrets && options.secrets.length > 0 ? { secrets: options.secrets } : {}),
  };
}

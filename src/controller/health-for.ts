import { DEFAULTS } from '../config/normalise.js';
import type { ServiceHealth, ServiceSpec } from '../config/types.js';
import { ProvenanceLabel } from '../bake/image-config.js';
import type { ImageConfig } from '../oci/types.js';

/**
 * The health check a service's instances must pass: the service's own, else the image's
 * (its `dev.imago.health` label: retries become the unhealthy threshold), else a TCP connect
 * to the instance's port.
 */
export function healthFor(service: ServiceSpec, image: ImageConfig): ServiceHealth {
  if (service.health) return service.health;
  const label = image.config?.Labels?.[ProvenanceLabel.health];
  if (label) {
    try {
      const h = JSON.parse(label) as { kind: string; path?: string; command?: string | string[]; interval: number; timeout: number; retries: number; startPeriod: number };
      const check = h.kind === 'http' && h.path ? { kind: 'http' as const, path: h.path } : h.command ? { kind: 'command' as const, command: h.command } : { kind: 'tcp' as const };
      return { check, interval: h.interval, timeout: h.timeout, startPeriod: h.startPeriod, startInterval: DEFAULTS.service.health.startInterval, healthyThreshold: 1, unhealthyThreshold: Math.max(1, h.retries) };
    } catch {
      // a label that does not parse is no health check: fall through to TCP
    }
  }
  return { check: { kind: 'tcp' }, ...DEFAULTS.service.health };
}

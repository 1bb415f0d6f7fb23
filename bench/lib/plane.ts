/** What the benches read of a control plane: a service's router URL and its instances. */
import type { InstanceSnapshot } from '../../src/controller/service-loop.js';
import type { ControlPlane } from '../../src/server/control-plane.js';

/** A service's entry in the control plane's status. */
async function entry(plane: ControlPlane, service: string): Promise<Record<string, unknown>> {
  const found = (await plane.status()).find((s) => s.service === service);
  if (!found) throw new Error(`expected service '${service}' in the control plane's status`);
  return found;
}

/** The router URL of a service. */
export async function urlOf(plane: ControlPlane, service: string): Promise<string> {
  return String((await entry(plane, service)).url);
}

/** A service's instances as the control plane sees them. */
export async function instancesOf(plane: ControlPlane, service: string): Promise<InstanceSnapshot[]> {
  return (await entry(plane, service)).instances as InstanceSnapshot[];
}

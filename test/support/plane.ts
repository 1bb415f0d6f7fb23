import type { ControlPlane } from '../../src/server/control-plane.js';

/** A service's router URL and instances as the control plane reports them. */
export async function serviceStatus(plane: ControlPlane, service: string): Promise<{ url: string; instances: Array<{ id: string; release: number; state: string; health: string; routed: boolean; startedAt: number; drift: string[]; bucket: string; address: string }>; degraded: { reason: string } | null; desired: { replicas: number } }> {
  const entry = (await plane.status()).find((s) => s.service === service);
  if (!entry) throw new Error(`service '${service}' is not in the control plane's status`);
  return entry as never;
}

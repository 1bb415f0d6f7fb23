/**
 * The loopback ports instances listen on: below Linux's default ephemeral range (32768–60999),
 * so no outgoing connection (the router's, a probe's) can take one between imago choosing it
 * and the instance binding it.
 */
export const INSTANCE_PORTS = { from: 20_000, to: 32_767 } as const;

/**
 * Picks a port for a new instance: from a random point of `range` (`random` in [0, 1)), the
 * first port not in `taken` (ports held by instances, or found busy). Undefined when every
 * port of the range is taken. The caller checks that it binds.
 *
 * @example choosePort(new Set([20_000]), 0) // 20001
 */
export function choosePort(taken: ReadonlySet<number>, random: number, range: { from: number; to: number } = INSTANCE_PORTS): number | undefined {
  const size = range.to - range.from + 1;
  const first = Math.min(size - 1, Math.max(0, Math.floor(random * size)));
  for (let i = 0; i < size; i++) {
    const port = range.from + ((first + i) % size);
    if (!taken.has(port)) return port;
  }
  return undefined;
}

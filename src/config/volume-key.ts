/**
 * The name a volume has outside its service: `<service>-<volume>`, with an environment's `@`
 * as `..` (which no service name holds). Docker names its volumes by it, so two pairs that make
 * one key (`web` + `data-x`, `web-data` + `x`) would share their data: a config that holds both
 * is refused.
 */
export function volumeKey(service: string, volume: string): string {
  return `${service.replace('@', '..').replace(/[^A-Za-z0-9_.-]/g, '-')}-${volume}`;
}

import { BlockList, isIP } from 'node:net';
import { ImagoError } from '../errors.js';

/** Loopback ranges: 127.0.0.0/8 and ::1 (IPv4-mapped loopback such as ::ffff:127.0.0.1 matches too). */
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * The literal IP a health probe may connect to for `host`, or an ImagoError when `host` is not
 * loopback. `localhost` is taken as 127.0.0.1 without asking DNS, so no resolver or hosts file
 * can point a probe elsewhere. Names are never resolved: this machine must not probe others.
 *
 * @example loopbackAddress('[::1]') // '::1'; loopbackAddress('10.0.0.1') throws
 */
export function loopbackAddress(host: string): string {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (bare.toLowerCase() === 'localhost') return '127.0.0.1';
  const family = isIP(bare);
  if (family !== 0 && LOOPBACK.check(bare, family === 4 ? 'ipv4' : 'ipv6')) return bare;
  throw new ImagoError(
    `refusing to probe '${host}': health checks only reach loopback addresses (127.0.0.0/8, ::1, localhost), got ${family === 0 ? 'a host name' : `IPv${family} address ${bare}`}`,
  );
}

import type { StoredLogLine } from './log-store.js';

/**
 * The private enterprise number in imago's structured data. 32473 is the number RFC 5612
 * reserves for documentation and examples; imago has none of its own yet.
 */
export const SD_ID = 'imago@32473';

/** Facility local0 (16); severity info (6) for output, err (3) for stderr: PRI = facility × 8 + severity. */
const FACILITY = 16;
const SEVERITY = { stdout: 6, output: 6, stderr: 3 } as const;

/** RFC 5424's PRINTUSASCII fields (APP-NAME, PROCID): printable, no space, at most `max` long; `-` when empty. */
function field(text: string, max: number): string {
  const clean = text.replace(/[^\x21-\x7e]/g, '_').slice(0, max);
  return clean === '' ? '-' : clean;
}

/** A PARAM-VALUE of structured data: `"`, `\` and `]` escaped (RFC 5424 section 6.3.3). */
function paramValue(text: string): string {
  return text.replace(/["\\\]]/g, (c) => `\\${c}`);
}

/**
 * One stored line as an RFC 5424 message: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG`.
 * APP-NAME is the service, PROCID the instance, and the structured data carries the
 * environment, the release version and the line's id in the store (`[imago@32473 env="prod"
 * release="3" id="1234"]`), so a receiver can tell a line sent twice after a broken connection.
 */
export function formatSyslog(line: StoredLogLine, hostname: string): string {
  const pri = FACILITY * 8 + SEVERITY[line.stream];
  const sd = `[${SD_ID} env="${paramValue(line.env)}" release="${line.release ?? '-'}" id="${line.id}"]`;
  return `<${pri}>1 ${new Date(line.at).toISOString()} ${field(hostname, 255)} ${field(line.service, 48)} ${field(line.instance, 128)} - ${sd} ${line.text}`;
}

/** A message framed by octet counting (RFC 6587 section 3.4.1): its length in bytes, a space, the message. */
export function octetFrame(message: string): string {
  return `${Buffer.byteLength(message)} ${message}`;
}

/** Where to forward: `tcp://host:port` or `tls://host:port` (RFC 5425; port 6514 by convention). */
export interface SyslogTarget {
  tls: boolean;
  host: string;
  port: number;
  /** The URL as given, for messages and for the forwarder's position in the store. */
  url: string;
}

/** Parses a forwarding target; a clear error names what was expected. */
export function parseSyslogTarget(url: string): SyslogTarget | { error: string } {
  const match = /^(tcp|tls):\/\/(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(url.trim());
  const port = Number(match?.[3]);
  if (!match || port < 1 || port > 65535) return { error: `expected tcp://host:port or tls://host:port (a syslog server; RFC 5424 over TCP, or TLS per RFC 5425), got '${url}'` };
  return { tls: match[1] === 'tls', host: match[2]!.replace(/^\[|\]$/g, ''), port, url: url.trim() };
}

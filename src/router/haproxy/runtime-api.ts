import { connect } from 'node:net';

/**
 * Sends one command line to HAProxy's runtime API on a unix socket and resolves with its
 * answer (the API answers and closes the connection). Rejects on a connection error or after
 * `timeoutMs`.
 */
export function runtimeCommand(socket: string, command: string, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const conn = connect(socket);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error(`no answer to '${command}' within ${timeoutMs} ms`));
    }, timeoutMs);
    conn.on('connect', () => conn.end(`${command}\n`));
    conn.on('data', (chunk: Buffer) => chunks.push(chunk));
    conn.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    conn.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
}

/**
 * The pid of the HAProxy worker that answers `show info` on `socket`. Rejects when none
 * answers within `timeoutMs`, or when the connection closes with no such answer (HAProxy ended
 * meanwhile): an empty answer is no sign of life.
 */
export async function infoPid(socket: string, timeoutMs = 5_000): Promise<number> {
  const answer = await runtimeCommand(socket, 'show info', timeoutMs);
  const pid = pidIn(answer);
  if (pid === undefined) throw new Error(answer.trim() === '' ? "the connection closed with no answer to 'show info'" : `'show info' did not say a pid: ${answer.trim().slice(0, 200)}`);
  return pid;
}

/** The worker's pid a `show info` answer (alone or before others) says, or undefined when it says none. */
export function pidIn(answer: string): number | undefined {
  const pid = Number(/^Pid:\s*(\d+)/m.exec(answer)?.[1]);
  return Number.isSafeInteger(pid) ? pid : undefined;
}

/** Rows of a `show stat` CSV answer, by column name. */
export function parseStatCsv(text: string): Array<Record<string, string>> {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const header = lines.find((l) => l.startsWith('# '));
  if (!header) return [];
  const names = header.slice(2).split(',');
  return lines
    .filter((l) => !l.startsWith('#'))
    .map((l) => {
      const values = l.split(',');
      return Object.fromEntries(names.map((n, i) => [n, values[i] ?? '']));
    });
}

/** One server of `show servers state <backend>`: its name, address, admin state flags and weight. */
export interface ServerState {
  name: string;
  addr: string;
  port: number;
  /** Bit field: 0x01 forced maintenance, 0x08 forced drain (see the management guide). */
  adminState: number;
  /** The weight the server was given. */
  weight: number;
}

/** Parses `show servers state` (format 1): the servers of the one backend it was asked for. */
export function parseServersState(text: string): ServerState[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const header = lines.find((l) => l.startsWith('# '));
  if (!header) return [];
  const names = header.slice(2).trim().split(/\s+/);
  const at = (name: string) => names.indexOf(name);
  // The first line is the format's version; each server's line has every column.
  return lines
    .filter((l) => !l.startsWith('#'))
    .map((l) => l.trim().split(/\s+/))
    .filter((v) => v.length >= names.length)
    .map((v) => {
      return { name: v[at('srv_name')]!, addr: v[at('srv_addr')]!, port: Number(v[at('srv_port')]), adminState: Number(v[at('srv_admin_state')]), weight: Number(v[at('srv_uweight')]) };
    });
}

/** True when a runtime API answer reports an error (the API answers errors as text, not codes). */
export function isRuntimeError(answer: string): boolean {
  const text = answer.trim();
  return text !== '' && !/^New server registered\.|^Server deleted\.|^\d+$/.test(text) && /(error|not found|no such|unknown|invalid|cannot|failed|require|must|not allowed|Unknown command|only)/i.test(text);
}

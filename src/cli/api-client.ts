import { readFile } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import { HttpError, ImagoError } from '../errors.js';
import { tokenPath } from '../server/token.js';

/** Where a running server said it listens: `<home>/server.json`. */
export function serverFile(home: string): string {
  return join(home, 'server.json');
}

/** A thin client of the control plane's API: the server's address and token come from the state folder. */
export class ApiClient {
  private constructor(
    private readonly base: string,
    private readonly token: string,
  ) {}

  /** Finds the server (`$IMAGO_SERVER`, else `<home>/server.json`) and its token (`$IMAGO_TOKEN`, else `<home>/api-token`). */
  static async connect(home: string): Promise<ApiClient> {
    let base = process.env.IMAGO_SERVER;
    if (!base) {
      const info = await readFile(serverFile(home), 'utf8').then((t) => JSON.parse(t) as { url?: string }).catch(() => undefined);
      base = info?.url;
    }
    if (!base) throw new ImagoError(`no imago server is running for state folder '${home}': start one with 'imago server'`);
    const token = process.env.IMAGO_TOKEN ?? (await readFile(tokenPath(home), 'utf8').catch(() => '')).trim();
    return new ApiClient(base.replace(/\/$/, ''), token);
  }

  /** Calls the API; a non-2xx answer becomes an HttpError with the server's message. */
  async call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json', 'x-imago-actor': cliActor() },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (error) {
      throw new ImagoError(`no imago server answers at ${this.base}: start one with 'imago server' (${(error as Error).cause ?? (error as Error).message})`, { cause: error });
    }
    const payload = (await res.json().catch(() => ({}))) as T & { error?: string };
    if (!res.ok) throw new HttpError(res.status, payload.error ?? `the server answered ${res.status}`);
    return payload;
  }
}

/** Who asks: the OS user and host of this CLI (`alice@build-01`), in the characters the server accepts. */
export function cliActor(): string {
  let user = process.env.USER ?? 'cli';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry for this uid: the environment's word for it
  }
  const clean = (text: string) => text.replace(/[^\w.-]/g, '_');
  return `${clean(user)}@${clean(hostname())}`.slice(0, 64);
}

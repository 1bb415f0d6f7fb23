import { ProviderError } from '../../errors.js';

/**
 * A ProviderError for a failed engine call, with the engine's own message and, when the
 * engine cannot be reached, where imago looked and how to point it elsewhere.
 */
export function engineError(what: string, error: unknown): ProviderError {
  if (error instanceof ProviderError) return error;
  const e = error as { code?: string; statusCode?: number; json?: { message?: string }; message?: string; address?: string };
  if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED' || e.code === 'EACCES') {
    const where = process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
    return new ProviderError(`${what}: cannot reach the Docker Engine at ${where} (${e.code}); start dockerd, or set DOCKER_HOST`, { cause: error });
  }
  const message = e.json?.message ?? e.message ?? String(error);
  return new ProviderError(`${what}: ${e.statusCode ? `the engine answered ${e.statusCode}: ` : ''}${message.trim()}`, { cause: error });
}

/** The HTTP status of a failed engine call, if it got one. */
export function statusOf(error: unknown): number | undefined {
  return (error as { statusCode?: number }).statusCode;
}

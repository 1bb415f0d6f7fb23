import { ImageError, ImagoError, reasonOf } from '../errors.js';

/** One ImageError for a failed image operation: `<what>: <reason>`, keeping the cause, not-found and bad input. */
export function wrapImageError(what: string, error: unknown): ImageError {
  const notFound = error instanceof ImageError && error.notFound;
  const badInput = error instanceof ImagoError && error.exitCode === 2;
  return new ImageError(`${what}: ${reasonOf(error)}`, { cause: error, notFound, badInput });
}

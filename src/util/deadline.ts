import { ProviderError } from '../errors.js';

/** `work`, or a ProviderError naming `what` when it takes longer than `ms` (the work itself goes on). */
export function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new ProviderError(`${what} within ${Math.round(ms / 1000)}s`)), ms);
    timer.unref();
    work.then(
      (value) => (clearTimeout(timer), resolve(value)),
      (error: unknown) => (clearTimeout(timer), reject(error)),
    );
  });
}

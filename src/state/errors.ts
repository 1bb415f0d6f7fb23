import { ImagoError } from '../errors.js';

/** A lock is held by someone else (or not held by the one releasing it). */
export class LockError extends ImagoError {
  /** The lock's name. */
  readonly lock: string;
  /** Who holds it, when someone does. */
  readonly owner: string | undefined;
  /** When the holder's lease ends (ms since the epoch), when someone holds it. */
  readonly expiresAt: number | undefined;

  constructor(message: string, options: { lock: string; owner?: string; expiresAt?: number; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.lock = options.lock;
    this.owner = options.owner;
    this.expiresAt = options.expiresAt;
  }
}

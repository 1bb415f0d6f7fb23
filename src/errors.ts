/**
 * imago's few named errors. Each keeps its `cause`; the CLI maps them to exit codes
 * (2 for bad input, 1 for everything else) in one place.
 */

/** Base class: every error imago throws on purpose is one of these. */
export class ImagoError extends Error {
  /** Process exit code the CLI uses for this error. */
  readonly exitCode: number;

  constructor(message: string, options: { cause?: unknown; exitCode?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.exitCode = options.exitCode ?? 1;
  }
}

/** The configuration (or a command's arguments) is invalid: bad input, exit 2. */
export class ConfigError extends ImagoError {
  /** File the error was found in, when there is one. */
  readonly file: string | undefined;

  constructor(message: string, options: { file?: string; cause?: unknown } = {}) {
    super(options.file ? `${options.file}: ${message}` : message, { cause: options.cause, exitCode: 2 });
    this.file = options.file;
  }
}

/** Baking an image failed (a step, a sandbox, a refused input). */
export class BakeError extends ImagoError {}

/**
 * An image operation failed: unknown reference, corrupt or hostile archive, a blob
 * that does not hash to its name. `notFound` marks a reference that names nothing (exit 2).
 */
export class ImageError extends ImagoError {
  readonly notFound: boolean;

  constructor(message: string, options: { cause?: unknown; notFound?: boolean; badInput?: boolean } = {}) {
    super(message, { cause: options.cause, exitCode: options.notFound || options.badInput ? 2 : 1 });
    this.notFound = options.notFound ?? false;
  }
}

/** Formats an unknown thrown value as a one-line reason. */
export function reasonOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** A provider could not do what was asked (start, stop, list instances). */
export class ProviderError extends ImagoError {}

/**
 * A router could not do what was asked: its address is in use (`inUse`), its TLS files are
 * bad (`badInput`), its process would not start or does not answer.
 */
export class RouterError extends ImagoError {
  readonly inUse: boolean;
  readonly badInput: boolean;

  constructor(message: string, options: { cause?: unknown; inUse?: boolean; badInput?: boolean } = {}) {
    super(message, { cause: options.cause, exitCode: options.inUse || options.badInput ? 2 : 1 });
    this.inUse = options.inUse ?? false;
    this.badInput = options.badInput ?? false;
  }
}

/** A deploy could not be done (an unknown service, a release that cannot go live). */
export class DeployError extends ImagoError {}

/** An API request failed with an HTTP status (the server's one error handler sends it). */
export class HttpError extends ImagoError {
  constructor(
    readonly status: number,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause, exitCode: status >= 400 && status < 500 ? 2 : 1 });
  }
}

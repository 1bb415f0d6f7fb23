/** Lines one logs query answers at most, unless it asks for fewer (the CLI pages by it). No imports: the CLI loads it at start. */
export const DEFAULT_LOG_LIMIT = 10_000;

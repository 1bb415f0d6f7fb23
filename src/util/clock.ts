/** Time as the control loop and health checks see it: the system's, or a test's that it moves by hand. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `fn` once after `ms`; returns the function that cancels it. Never keeps the process alive. */
  setTimer(fn: () => void, ms: number): () => void;
}

/** The system clock: Date.now and unref'd timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const timer = setTimeout(fn, Math.max(0, ms));
    timer.unref();
    return () => clearTimeout(timer);
  },
};

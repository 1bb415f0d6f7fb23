import type { Clock } from '../../util/clock.js';

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
}

/**
 * A clock that moves only when told: scenario tests run minutes of a control loop in
 * milliseconds. Timers fire in time order; between two, the promises their callbacks started
 * are let settle (a few turns of the event loop), as they would in real time.
 */
export class FakeClock implements Clock {
  private time: number;
  private readonly timers: Timer[] = [];
  private seq = 0;

  constructor(start = Date.UTC(2030, 0, 1)) {
    this.time = start;
  }

  /** The fake time. */
  now(): number {
    return this.time;
  }

  /** Calls `fn` once the fake time reaches now + `ms`. */
  setTimer(fn: () => void, ms: number): () => void {
    const timer: Timer = { at: this.time + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(timer);
    return () => {
      const i = this.timers.indexOf(timer);
      if (i >= 0) this.timers.splice(i, 1);
    };
  }

  /** Moves time forward by `ms`, firing every timer due on the way. */
  async advance(ms: number): Promise<void> {
    const until = this.time + ms;
    await settle();
    for (;;) {
      const next = this.nextTimer();
      if (!next || next.at > until) break;
      this.timers.splice(this.timers.indexOf(next), 1);
      this.time = Math.max(this.time, next.at);
      next.fn();
      await settle();
    }
    this.time = until;
    await settle();
  }

  /**
   * Moves time forward in steps of `stepMs` until `check` holds; fails naming `what` when
   * `limitMs` of fake time pass first. Returns the fake time it took.
   */
  async until(what: string, check: () => boolean | Promise<boolean>, limitMs: number, stepMs = 10): Promise<number> {
    const started = this.time;
    while (!(await check())) {
      if (this.time - started >= limitMs) throw new Error(`fake time: ${what} did not happen within ${limitMs} ms`);
      await this.advance(stepMs);
    }
    return this.time - started;
  }

  private nextTimer(): Timer | undefined {
    let best: Timer | undefined;
    for (const timer of this.timers) if (!best || timer.at < best.at || (timer.at === best.at && timer.seq < best.seq)) best = timer;
    return best;
  }
}

/** Lets promises started so far settle: a few turns of the real event loop. */
async function settle(): Promise<void> {
  for (let i = 0; i < 4; i++) await new Promise((resolve) => setImmediate(resolve));
}

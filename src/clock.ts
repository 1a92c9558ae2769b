/**
 * Time as an argument: what waits or judges time (the quiet window, the
 * rescan, heartbeats, the judgement of silence) takes a Clock, so unit tests
 * drive it with a fake and never sleep. Plain periodic triggers (the silence
 * sweep, the directory check, the status feed's push) use timers directly.
 */
export interface Clock {
  /** Monotonic milliseconds, for measuring intervals (never goes back). */
  now(): number;
  /** Wall-clock milliseconds since the epoch, for timestamps people read. */
  wallNow(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** Opaque timer handle; only the clock that made it can clear it. */
export type TimerHandle = { readonly __timer: unique symbol } | object;

/** The real clock. Timers are unref'd: a pending one never keeps the process alive. */
export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

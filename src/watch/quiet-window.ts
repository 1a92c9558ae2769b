import type { Clock, TimerHandle } from '../clock.js';

export interface QuietWindowOptions {
  /** Fire this long after the last event of a burst. */
  quietMs: number;
  /** ...but never later than this after the burst's first event, so a steady stream still fires. */
  maxWaitMs: number;
  clock: Clock;
  /** `capped`: the window fired at `maxWaitMs` while events were still coming, not after a quiet spell. */
  onFire: (burst: { events: number; waitedMs: number; capped: boolean }) => void;
}

/**
 * Coalesces a burst of events into one call: a debounce with a cap. Files
 * written in several chunks a few milliseconds apart are read once, after the
 * last chunk; a writer that never pauses is still read every `maxWaitMs`.
 */
export class QuietWindow {
  private timer: TimerHandle | undefined;
  private burstStart: number | undefined;
  private events = 0;
  private capped = false;

  constructor(private readonly options: QuietWindowOptions) {}

  /** `events` things happened (0: a read put off, no new event): (re)start the quiet window. */
  poke(events = 1): void {
    const { clock, quietMs, maxWaitMs } = this.options;
    const now = clock.now();
    this.burstStart ??= now;
    this.events += events;
    if (this.timer !== undefined) clock.clearTimeout(this.timer);
    const delay = Math.max(0, Math.min(quietMs, this.burstStart + maxWaitMs - now));
    this.capped = delay < quietMs;
    this.timer = clock.setTimeout(() => this.fire(), delay);
  }

  /** Forget a pending burst without firing; returns how many events it held. */
  cancel(): number {
    const events = this.events;
    if (this.timer !== undefined) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.burstStart = undefined;
    this.events = 0;
    this.capped = false;
    return events;
  }

  get pending(): boolean {
    return this.burstStart !== undefined;
  }

  private fire(): void {
    const burst = { events: this.events, waitedMs: this.options.clock.now() - (this.burstStart ?? 0), capped: this.capped };
    this.cancel();
    this.options.onFire(burst);
  }
}

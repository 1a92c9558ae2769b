import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../clock.js';
import { messageOf } from '../errors.js';

/** A failed history operation is tried again after 250 ms, then twice as long each time up to 5 s, for up to a minute. */
export const RETRY_FIRST = 250; // ms
export const RETRY_MAX = 5000; // ms
export const RETRY_FOR = 60_000; // ms

/**
 * Tries a history operation again while it fails, for a bounded time: a
 * JetStream leader being elected (a cluster starting, a node lost), a bus
 * away for a moment, a disk an operator frees. Every history write is safe
 * to repeat (an entry is appended once under its key; the rollout state and
 * the current statement are replaced whole). Waits end at once on close():
 * a stopping sentinel does not wait out a retry.
 */
export class Retrier {
  private closed = false;
  private readonly wakers = new Set<() => void>();

  constructor(
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  close(): void {
    this.closed = true;
    for (const wake of this.wakers) wake();
    this.wakers.clear();
  }

  /**
   * Runs `operation` until it succeeds (true), or fails past the bound, or
   * the retrier is closed, or `wanted()` says a newer operation replaced it
   * (false). The first failure is a warning, giving up an error.
   */
  async run(what: string, fields: Record<string, unknown>, operation: () => Promise<unknown>, wanted: () => boolean = () => true): Promise<boolean> {
    const started = this.clock.now();
    for (let attempt = 1, wait = RETRY_FIRST; ; attempt++, wait = Math.min(wait * 2, RETRY_MAX)) {
      try {
        await operation();
        if (attempt > 1) this.log.info({ ...fields, attempt }, `${what}: done at attempt ${attempt}`);
        return true;
      } catch (err) {
        const failed = { ...fields, error: messageOf(err), attempt };
        if (!wanted()) return false;
        if (this.closed || this.clock.now() - started + wait > RETRY_FOR) {
          this.log.error(failed, this.closed ? `${what} failed before the sentinel stopped` : `${what} failed; not trying again`);
          return false;
        }
        if (attempt === 1) this.log.warn(failed, `${what} failed; trying again for up to ${RETRY_FOR / 1000} s`);
        if (!(await this.pause(wait)) || !wanted()) {
          if (wanted()) this.log.error(failed, `${what} failed before the sentinel stopped`);
          return false;
        }
      }
    }
  }

  /** Waits `ms`, or less if closed meanwhile: true when it waited the whole time. */
  private pause(ms: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      let timer: TimerHandle | undefined;
      const wake = () => {
        if (timer) this.clock.clearTimeout(timer);
        resolve(false);
      };
      timer = this.clock.setTimeout(() => {
        this.wakers.delete(wake);
        resolve(!this.closed);
      }, ms);
      this.wakers.add(wake);
    });
  }
}

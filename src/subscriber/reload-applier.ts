import type { PolicyReloadPayload, ReloadBody } from '../policy/announcements.js';
import { fetchReloadBody, MAX_BODY_BYTES, type Requester } from './fetch-reload-body.js';
import type { FilterReason, ReloadFilter } from './reload-filter.js';

/** A failed fetch or apply is tried again after this, doubling up to RETRY_MAX (with ±20% jitter), until a newer set supersedes it. */
export const RETRY_FIRST = 1000; // ms
export const RETRY_MAX = 30_000; // 30 s

/** A whole reload: its body fetched when it travelled apart. */
export type WholeReload = PolicyReloadPayload & ReloadBody;

/**
 * Thrown by `apply` for a set that can never be applied (a name the
 * filesystem refuses, two files of one name): it is refused once, reported,
 * and not tried again; a newer set is applied as usual.
 */
export class PermanentRefusal extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'PermanentRefusal';
  }
}

/** What the applier did with a message, for the caller's counts and log. */
export type ReceiveOutcome = 'queued' | 'superseded' | 'refused before' | FilterReason;

/** What happened to a set on its way. */
export type ApplierEvent =
  | { type: 'applied'; reload: WholeReload }
  | { type: 'failed'; revision: string; error: string; retryInMs: number }
  | { type: 'refused'; revision: string; reason: string; error: string };

export interface ReloadApplierOptions {
  filter: ReloadFilter;
  /** Asks a sentinel for a part of a body that travelled apart. */
  request: Requester;
  /**
   * Puts a whole, verified set in force. Rejects to fail (tried again with backoff), or with a
   * PermanentRefusal to refuse this set for good. Never called twice at once.
   */
  apply: (reload: WholeReload) => Promise<void>;
  /** Asks for the set in force again (a request on `nachos.system.policy.current`) before a failed fetch is tried again. */
  askCurrent?: () => Promise<unknown>;
  /** Sets are applied at least this far apart (ms); a newer one that arrives meanwhile is applied instead. */
  spacingMs?: number;
  /** The largest body fetched. */
  maxBodyBytes?: number;
  onEvent?: (event: ApplierEvent) => void;
  retryFirstMs?: number;
  retryMaxMs?: number;
}

interface Candidate {
  payload: PolicyReloadPayload;
  issuedAt: number;
}

/**
 * Applies reloads one at a time, in the order they were issued, never going
 * back to an older set: a newer set that arrives while an older one is being
 * fetched or waited for takes its place (the older is dropped); a set that
 * failed is tried again with backoff (asking the sentinel for the set in force
 * first, whose head may point elsewhere by then) until it is applied or a
 * newer one supersedes it; a set refused for good does not hold newer ones
 * back. A revision counts as applied (its repeats dropped) only once `apply`
 * resolved: one failed fetch never loses a revision.
 *
 *     sub.callback = (_err, msg) => applier.receive(msg.json());
 */
export class ReloadApplier {
  /** Why the newest set could not be applied yet, until it or a newer one is. */
  failure: string | undefined;
  /** Revisions refused for good, with why (the newest few). */
  readonly refused = new Map<string, string>();
  private wanted: Candidate | undefined;
  private current: Candidate | undefined;
  private fetching: AbortController | undefined;
  private running = false;
  private closed = false;
  private lastAppliedAt = -Infinity;
  private retryWait: number;
  private wake: (() => void) | undefined;

  constructor(private readonly options: ReloadApplierOptions) {
    this.retryWait = options.retryFirstMs ?? RETRY_FIRST;
  }

  /** Judges one reload message (through the filter) and queues it when it is newer than anything on its way. */
  receive(message: unknown): ReceiveOutcome {
    if (this.closed) return 'superseded';
    const verdict = this.options.filter.check(message);
    if (!verdict.accept) return verdict.reason;
    const candidate: Candidate = { payload: verdict.payload, issuedAt: verdict.issuedAt };
    const { revision } = candidate.payload;
    if (this.refused.has(revision)) return 'refused before';
    const ahead = this.wanted ?? this.current;
    if (ahead?.payload.revision === revision) {
      // The same set again. Queued, it takes the fresher statement; failing, a fresher head (the sentinel
      // restarted, its transfer is elsewhere) is tried at once; on its way, nothing to do.
      if (candidate.issuedAt >= ahead.issuedAt && (this.wanted || this.failure !== undefined)) {
        this.wanted = candidate;
        this.wake?.();
      }
      return 'queued';
    }
    if (ahead && candidate.issuedAt <= ahead.issuedAt) return 'superseded';
    this.wanted = candidate;
    // The older set on its way is dropped: its fetch stops between parts, a wait ends now.
    this.fetching?.abort();
    this.wake?.();
    this.kick();
    return 'queued';
  }

  /** Stops: nothing more is fetched or applied (an apply in progress finishes). */
  close(): void {
    this.closed = true;
    this.wanted = undefined;
    this.fetching?.abort();
    this.wake?.();
  }

  private kick(): void {
    if (this.running || this.closed) return;
    this.running = true;
    void this.run().finally(() => {
      this.running = false;
      if (this.wanted && !this.closed) this.kick();
    });
  }

  private async run(): Promise<void> {
    const { filter, apply, onEvent } = this.options;
    while (this.wanted && !this.closed) {
      const candidate = this.wanted;
      this.wanted = undefined;
      this.current = candidate;
      const { revision } = candidate.payload;
      const controller = new AbortController();
      this.fetching = controller;
      try {
        const reload = await fetchReloadBody(candidate.payload, this.options.request, {
          signal: controller.signal,
          maxBytes: this.options.maxBodyBytes ?? MAX_BODY_BYTES,
        });
        this.fetching = undefined;
        // Spaced from the last apply; a newer set that arrives meanwhile goes instead.
        await this.sleep(this.lastAppliedAt + (this.options.spacingMs ?? 0) - performance.now());
        const newer = this.wanted as Candidate | undefined;
        if (this.closed || (newer && newer.payload.revision !== revision)) continue;
        await apply(reload);
        this.lastAppliedAt = performance.now();
        filter.applied(candidate.payload);
        this.failure = undefined;
        this.retryWait = this.options.retryFirstMs ?? RETRY_FIRST;
        onEvent?.({ type: 'applied', reload });
      } catch (err) {
        this.fetching = undefined;
        if (this.closed || controller.signal.aborted) continue;
        const error = err instanceof Error ? err.message : String(err);
        if (err instanceof PermanentRefusal) {
          this.refused.set(revision, `${err.reason}: ${error}`);
          if (this.refused.size > 16) this.refused.delete(this.refused.keys().next().value as string);
          this.failure = undefined;
          onEvent?.({ type: 'refused', revision, reason: err.reason, error });
          continue;
        }
        const wait = jitter(this.retryWait);
        this.retryWait = Math.min(this.retryWait * 2, this.options.retryMaxMs ?? RETRY_MAX);
        this.failure = error;
        onEvent?.({ type: 'failed', revision, error, retryInMs: Math.round(wait) });
        await this.sleep(wait);
        if (this.closed || this.wanted) continue;
        // Ask what is in force now (its head may name another transfer, the sentinel may have restarted);
        // the answer comes through receive(). Then this set again, unless something newer came.
        try {
          const answer = await this.options.askCurrent?.();
          if (answer !== undefined) this.receive(answer);
        } catch {
          // No answer: the set we have is tried again as it is.
        }
        this.wanted ??= candidate;
      } finally {
        this.current = undefined;
      }
    }
  }

  /** Waits `ms`, or less when a newer set arrives (receive wakes it). */
  private sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref?.();
      this.wake = done;
    });
  }
}

function jitter(ms: number): number {
  return ms * (0.8 + 0.4 * Math.random());
}

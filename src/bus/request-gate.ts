import type { Flusher } from '../protocol/ports.js';

/**
 * What any peer can make the sentinel spend answering requests, bounded:
 * requests per second from one requester and from all, bytes per second
 * sent, and bytes sent but not yet taken by the server (a reply is counted
 * out when a ping sent after it is answered: everything before it reached
 * the server). Past a bound, a request is shed: answered with an ADR-32
 * 503 while that is cheap, not answered at all past RefusalsPerSecond (a
 * flood must not be answered in kind). Requesters are told apart by their
 * reply subject's inbox (nats.js gives each connection one inbox prefix);
 * a flood that makes up inboxes meets the totals.
 */

export interface GateLimits {
  /** Requests per second from one requester, in bursts of up to `perRequesterBurst`. */
  perRequesterPerSecond: number;
  perRequesterBurst: number;
  /** Requests per second from everyone. */
  totalPerSecond: number;
  totalBurst: number;
}

export type Admission = 'ok' | 'requester' | 'total' | 'bytes' | 'outstanding';

/** Shed requests answered with a 503 at most this often (per second); past it they get no answer at all. */
export const REFUSALS_PER_SECOND = 500;
/** Requesters remembered for their own rate; the least recently seen is forgotten first. */
const MAX_REQUESTERS = 4096;

/** A token bucket over a monotonic clock. */
class Bucket {
  private tokens: number;
  private at: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.at = now;
  }

  take(now: number, n = 1): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.perSecond);
    this.at = now;
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }
}

/**
 * Bytes sent by every gated endpoint together: per second, and outstanding
 * (sent, the server not known to have them yet).
 */
export class ByteBudget {
  /** Bytes sent whose arrival at the server no ping has confirmed yet. */
  outstanding = 0;
  private readonly rate: Bucket;
  private flushing = false;

  constructor(
    readonly options: { bytesPerSecond: number; burstBytes: number; maxOutstandingBytes: number; bus: Flusher; now: () => number },
  ) {
    this.rate = new Bucket(options.bytesPerSecond, options.burstBytes, options.now());
  }

  /** Whether `bytes` may be sent now; when they may, they are counted as sent. */
  take(bytes: number): 'ok' | 'bytes' | 'outstanding' {
    if (this.outstanding > 0 && this.outstanding + bytes > this.options.maxOutstandingBytes) return 'outstanding';
    if (!this.rate.take(this.options.now(), Math.min(bytes, this.options.burstBytes))) return 'bytes';
    this.outstanding += bytes;
    this.confirm();
    return 'ok';
  }

  /** One ping at a time: when it is answered, what was sent before it is with the server. */
  private confirm(): void {
    if (this.flushing) return;
    this.flushing = true;
    const counted = this.outstanding;
    this.options.bus.flush().then(
      () => {
        this.flushing = false;
        this.outstanding = Math.max(0, this.outstanding - counted);
        if (this.outstanding > 0) this.confirm();
      },
      () => {
        // The connection went: nothing it held will be sent.
        this.flushing = false;
        this.outstanding = 0;
      },
    );
  }
}

export class RequestGate {
  /** Requests shed, by why. */
  readonly shed: Record<Exclude<Admission, 'ok'>, number> = { requester: 0, total: 0, bytes: 0, outstanding: 0 };
  /** Shed requests left unanswered (past REFUSALS_PER_SECOND). */
  unanswered = 0;
  private readonly total: Bucket;
  private readonly refusals: Bucket;
  private readonly requesters = new Map<string, Bucket>();

  constructor(
    private readonly limits: GateLimits,
    private readonly bytes: ByteBudget,
    private readonly now: () => number,
  ) {
    this.total = new Bucket(limits.totalPerSecond, limits.totalBurst, now());
    this.refusals = new Bucket(REFUSALS_PER_SECOND, REFUSALS_PER_SECOND, now());
  }

  /** Whether to answer a request from `reply` (its reply subject) with `size` bytes; counted when it is. */
  admit(reply: string | undefined, size: number): Admission {
    const now = this.now();
    const who = requesterOf(reply);
    let bucket = this.requesters.get(who);
    if (bucket) this.requesters.delete(who);
    else {
      bucket = new Bucket(this.limits.perRequesterPerSecond, this.limits.perRequesterBurst, now);
      if (this.requesters.size >= MAX_REQUESTERS) this.requesters.delete(this.requesters.keys().next().value as string);
    }
    this.requesters.set(who, bucket);
    let verdict: Admission = 'ok';
    if (!bucket.take(now)) verdict = 'requester';
    else if (!this.total.take(now)) verdict = 'total';
    else verdict = this.bytes.take(size);
    if (verdict !== 'ok') this.shed[verdict]++;
    return verdict;
  }

  /** Whether a shed request may still be told so (a 503), or must go unanswered. */
  mayRefuse(): boolean {
    if (this.refusals.take(this.now())) return true;
    this.unanswered++;
    return false;
  }
}

/** `_INBOX.abc.7` -> `_INBOX.abc`: one connection's inbox (nats.js muxes its requests under one prefix). */
function requesterOf(reply: string | undefined): string {
  if (!reply) return '';
  const dot = reply.lastIndexOf('.');
  return dot > 0 ? reply.slice(0, dot) : reply;
}

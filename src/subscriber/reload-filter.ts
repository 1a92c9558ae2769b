import { checkConsistency, type PolicyReloadPayload } from '../policy/announcements.js';
import { inAudience } from '../protocol/audience.js';
import { envelopeType, SUBJECTS } from '../protocol/topics.js';
import { verifyReload, type VerifyReason } from './verify-reload.js';

/** How far ahead of this host's clock an `issuedAt` may be, unless configured otherwise. */
export const DEFAULT_MAX_CLOCK_SKEW = 5 * 60_000; // 5 minutes

export interface ReloadFilterOptions {
  /** The sentinel's public NKeys: only reloads one of them signed are accepted (several during a key rotation). */
  publicKeys?: string | readonly string[];
  /** The deployment this subscriber belongs to (`[trust] deployment`): a set announced for another is refused. Default "". */
  deployment?: string;
  /** An `issuedAt` further ahead of this host's clock than this is refused, and never moves the replay mark. */
  maxClockSkewMs?: number;
  /** Refuse a reload issued longer ago than this (by its `issuedAt`, against this host's clock). */
  maxAgeMs?: number;
  /** Wall-clock milliseconds; injectable for tests. */
  now?: () => number;
  /** What was applied before (across a restart): its repeat is a duplicate, and nothing issued before it is accepted. */
  after?: Applied;
  /**
   * Who this subscriber is: a reload for an audience (a canary) that does not name its component, or
   * `component/instance`, is not for it. Without it, only reloads for everyone are taken.
   */
  member?: { component: string; instance?: string };
}

/** A set in force, and the newest statement that confirmed it. */
export interface Applied {
  revision: string;
  issuedAt: string | null;
  expiresAt?: string | null;
}

export type FilterReason = VerifyReason | 'not a reload' | 'wrong deployment' | 'not for us' | 'from the future' | 'expired' | 'replayed' | 'duplicate';
export type FilterVerdict =
  | { accept: true; payload: PolicyReloadPayload; issuedAt: number }
  | { accept: false; reason: FilterReason; payload?: PolicyReloadPayload };

/**
 * What a subscriber should do with each reload message: with the sentinel's
 * public keys configured, refuse anything unsigned or signed otherwise; and,
 * signed or not, refuse a reload for another deployment or of another type,
 * one from the future (beyond the clock skew allowed), one expired, one
 * issued before the newest one applied (an old reload published again cannot
 * roll policies back, across the subscriber's restarts too when `after` is
 * given), and drop the set already in force (replicas and reconnects
 * announce it again; a fresher statement of it confirms it, see
 * `confirmation`).
 *
 * `check` judges without moving anything but a confirmation; `applied`
 * records a set once it is really in force, so a set that failed to apply
 * (a fetch, a disk) is not taken for a duplicate when it comes again.
 * `accept` is both, for a subscriber that applies at once.
 */
export class ReloadFilter {
  private lastRevision: string | undefined;
  /** The newest `issuedAt` applied or confirmed: nothing issued before it is accepted. */
  private mark = -Infinity;
  private confirmed: { revision: string; issuedAt: number; expiresAt: number } | undefined;
  private readonly keys: readonly string[] | undefined;

  constructor(private readonly options: ReloadFilterOptions = {}) {
    const { after, publicKeys } = options;
    this.keys = publicKeys === undefined ? undefined : typeof publicKeys === 'string' ? [publicKeys] : [...publicKeys];
    if (after) this.record(after.revision, parseTime(after.issuedAt), parseTime(after.expiresAt ?? null));
  }

  /** The set in force (as recorded) and its newest confirmation: when it was issued and until when it holds (ms). */
  get confirmation(): { revision: string; issuedAt: number; expiresAt: number } | undefined {
    return this.confirmed;
  }

  /** Checks and, when accepted, records it as applied at once. */
  accept(message: unknown): FilterVerdict {
    const verdict = this.check(message);
    if (verdict.accept) this.applied(verdict.payload);
    return verdict;
  }

  /**
   * Whether to act on a reload (an envelope as received; without public keys, a bare payload too).
   * Moves nothing, except that a fresher statement of the set in force confirms it.
   */
  check(message: unknown): FilterVerdict {
    const { maxAgeMs, deployment = '' } = this.options;
    const envelope = message as { type?: unknown; payload?: unknown } | null;
    if (this.keys !== undefined) {
      const verdict = verifyReload(message, this.keys);
      if (!verdict.ok) return { accept: false, reason: verdict.reason };
    }
    const isEnvelope = envelope !== null && typeof envelope === 'object' && 'payload' in envelope;
    if (this.keys !== undefined && !isEnvelope) return { accept: false, reason: 'malformed' };
    const payload = (isEnvelope ? envelope.payload : message) as PolicyReloadPayload;
    if (this.keys === undefined) {
      const verdict = checkConsistency(payload);
      if (!verdict.ok) return { accept: false, reason: verdict.reason };
    }
    // Signed for this purpose and this deployment: a signature of the right key on another message is not enough.
    if (isEnvelope && envelope.type !== RELOAD_TYPE) return { accept: false, reason: 'not a reload' };
    if ((payload.deployment ?? '') !== deployment) return { accept: false, reason: 'wrong deployment' };
    const scope = scopeOf(payload);
    if (scope === 'malformed') return { accept: false, reason: 'malformed' };
    const { member } = this.options;
    if (scope?.only && !inAudience(scope.only, member)) return { accept: false, reason: 'not for us', payload };
    if (scope?.except && inAudience(scope.except, member)) return { accept: false, reason: 'not for us', payload };
    const issued = parseTime(payload.issuedAt);
    if (Number.isNaN(issued)) return { accept: false, reason: 'malformed' };
    const now = (this.options.now ?? Date.now)();
    if (issued > now + (this.options.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW)) return { accept: false, reason: 'from the future' };
    const expires = parseTime(payload.expiresAt ?? null);
    if (payload.expiresAt !== undefined && (Number.isNaN(expires) || expires < issued)) return { accept: false, reason: 'malformed' };
    // Signed sets always say until when they hold: a signed statement without an end would hold for ever.
    if (this.keys !== undefined && payload.expiresAt === undefined) return { accept: false, reason: 'malformed' };
    if (expires < now) return { accept: false, reason: 'expired' };
    if (maxAgeMs !== undefined && now - issued > maxAgeMs) return { accept: false, reason: 'expired' };
    if (issued < this.mark) return { accept: false, reason: 'replayed', payload };
    if (payload.revision === this.lastRevision) {
      // The set in force, stated again: a newer statement confirms it for longer.
      if (issued > (this.confirmed?.issuedAt ?? -Infinity)) this.record(payload.revision, issued, expires);
      return { accept: false, reason: 'duplicate', payload };
    }
    return { accept: true, payload, issuedAt: issued };
  }

  /** The set `payload` announced is in force now: its repeats are duplicates, and nothing issued before it is taken. */
  applied(payload: PolicyReloadPayload): void {
    this.record(payload.revision, parseTime(payload.issuedAt), parseTime(payload.expiresAt ?? null));
  }

  private record(revision: string, issued: number, expires: number): void {
    this.lastRevision = revision;
    if (!Number.isNaN(issued)) this.mark = Math.max(this.mark, issued);
    this.confirmed = Number.isNaN(issued) ? undefined : { revision, issuedAt: issued, expiresAt: Number.isNaN(expires) ? Infinity : expires };
  }
}

const RELOAD_TYPE = envelopeType(SUBJECTS.policyReload);

/** Who a reload is for: everyone (undefined), `only` some, or everyone `except` some; either only with schemaVersion 4, and 4 only with one. */
function scopeOf(payload: PolicyReloadPayload): { only?: readonly string[]; except?: readonly string[] } | undefined | 'malformed' {
  const { audience, excludes, schemaVersion } = payload as { audience?: unknown; excludes?: unknown; schemaVersion?: unknown };
  if (audience === undefined && excludes === undefined) return schemaVersion === 4 ? 'malformed' : undefined;
  const names = (list: unknown) => list === undefined || (Array.isArray(list) && list.every((a) => typeof a === 'string'));
  if (schemaVersion !== 4 || !names(audience) || !names(excludes) || (audience !== undefined && excludes !== undefined)) return 'malformed';
  return audience !== undefined ? { only: audience as string[] } : { except: excludes as string[] };
}


function parseTime(text: unknown): number {
  return typeof text === 'string' ? Date.parse(text) : Number.NaN;
}

export { inAudience };

import { checkConsistency, type PolicyReloadPayload } from '../policy/announcements.js';
import { verifyReload, type VerifyReason } from './verify-reload.js';

export interface ReloadFilterOptions {
  /** The sentinel's public NKey: only reloads it signed are accepted. */
  publicKey?: string;
  /** Refuse a reload issued longer ago than this (by its signed `issuedAt`, against this host's clock). */
  maxAgeMs?: number;
  /** Wall-clock milliseconds; injectable for tests. */
  now?: () => number;
  /** What was applied before (across a restart): its repeat is a duplicate, and nothing signed before it is accepted. */
  after?: { revision: string; issuedAt: string | null };
}

export type FilterReason = VerifyReason | 'duplicate' | 'replayed' | 'expired';
export type FilterVerdict = { accept: true; payload: PolicyReloadPayload } | { accept: false; reason: FilterReason };

/**
 * What a subscriber should do with each reload message: drop what it already
 * applied (replicas and reconnects announce the same revision again), and,
 * with the sentinel's public key configured, refuse anything unsigned or
 * signed otherwise, and anything issued before the newest reload it accepted
 * from that key: an old signed reload re-published later cannot roll
 * policies back. The order is the signed `issuedAt`, which survives restarts
 * of the sentinel (replicas must keep their clocks in step, as NTP does).
 */
export class ReloadFilter {
  private lastRevision: string | undefined;
  /** Newest `issuedAt` accepted, per signing key. */
  private readonly newest = new Map<string, number>();

  constructor(private readonly options: ReloadFilterOptions = {}) {
    const { after, publicKey } = options;
    if (!after) return;
    this.lastRevision = after.revision;
    const issued = after.issuedAt === null ? Number.NaN : Date.parse(after.issuedAt);
    if (publicKey !== undefined && !Number.isNaN(issued)) this.newest.set(publicKey, issued);
  }

  /** Accepts a reload envelope (or, without a public key, its bare payload); says why when it does not. */
  accept(message: unknown): FilterVerdict {
    const { publicKey, maxAgeMs } = this.options;
    const envelope = message as { payload?: unknown } | null;
    if (publicKey !== undefined) {
      const verdict = verifyReload(message, publicKey);
      if (!verdict.ok) return { accept: false, reason: verdict.reason };
    }
    const payload = (envelope?.payload ?? message) as PolicyReloadPayload;
    if (publicKey === undefined) {
      const verdict = checkConsistency(payload);
      if (!verdict.ok) return { accept: false, reason: verdict.reason };
    }
    const issued = typeof payload.issuedAt === 'string' ? Date.parse(payload.issuedAt) : Number.NaN;
    if (maxAgeMs !== undefined) {
      if (Number.isNaN(issued)) return { accept: false, reason: 'malformed' };
      if ((this.options.now ?? Date.now)() - issued > maxAgeMs) return { accept: false, reason: 'expired' };
    }
    if (publicKey !== undefined) {
      if (Number.isNaN(issued)) return { accept: false, reason: 'malformed' };
      const newest = this.newest.get(publicKey) ?? -Infinity;
      if (issued < newest) return { accept: false, reason: 'replayed' };
      this.newest.set(publicKey, issued);
    }
    if (payload.revision === this.lastRevision) return { accept: false, reason: 'duplicate' };
    this.lastRevision = payload.revision;
    return { accept: true, payload };
  }
}

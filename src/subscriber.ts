import type { PolicyReloadPayload } from './policy/announcements.js';
import { verifyReload, type VerifyResult } from './policy/signature.js';

/**
 * What a subscriber to `nachos.system.policy.reload` should do with each
 * message: drop what it already applied (replicas and reconnects announce the
 * same revision again), and, with the sentinel's public key configured,
 * refuse anything unsigned or signed otherwise.
 */
export class ReloadFilter {
  private lastRevision: string | undefined;

  constructor(private readonly options: { publicKey?: string } = {}) {}

  /** Accepts a reload envelope (or its payload); says why when it does not. */
  accept(message: unknown): { accept: true; payload: PolicyReloadPayload } | { accept: false; reason: 'duplicate' | Exclude<VerifyResult, { ok: true }>['reason'] } {
    const payload = ((message as { payload?: unknown } | null)?.payload ?? message) as PolicyReloadPayload;
    if (typeof payload?.revision !== 'string') return { accept: false, reason: 'malformed' };
    if (this.options.publicKey !== undefined) {
      const verdict = verifyReload(payload, this.options.publicKey);
      if (!verdict.ok) return { accept: false, reason: verdict.reason };
    }
    if (payload.revision === this.lastRevision) return { accept: false, reason: 'duplicate' };
    this.lastRevision = payload.revision;
    return { accept: true, payload };
  }
}

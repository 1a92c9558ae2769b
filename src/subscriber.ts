import { createHash } from 'node:crypto';
import { checkConsistency, type PolicyReloadPayload, type ReloadBody } from './policy/announcements.js';
import { checkSignature } from './policy/signature.js';

/**
 * What a container that subscribes to `nachos.system.policy.reload` needs:
 * a check of each message (`verifyReload`), a filter that drops repeats and
 * replays (`ReloadFilter`), and the fetch of a body that was too large to
 * travel in the message (`fetchReloadBody`).
 */

export type VerifyReason = 'unsigned' | 'wrong key' | 'bad signature' | 'revision mismatch' | 'content mismatch' | 'malformed';
export type VerifyResult = { ok: true } | { ok: false; reason: VerifyReason };

/**
 * Checks a reload message (the whole envelope, as received) against the
 * public key a subscriber trusts: signed by that key over every byte of it
 * (see signature.ts), its revision the one its files hash to, and each
 * file's bytes the ones announced. Never throws.
 */
export function verifyReload(message: unknown, publicKey: string): VerifyResult {
  const signed = checkSignature(message, publicKey);
  if (!signed.ok) return signed;
  return checkConsistency((message as { payload: unknown }).payload);
}

export interface ReloadFilterOptions {
  /** The sentinel's public NKey: only reloads it signed are accepted. */
  publicKey?: string;
  /** Refuse a reload issued longer ago than this (by its signed `issuedAt`, against this host's clock). */
  maxAgeMs?: number;
  /** Wall-clock milliseconds; injectable for tests. */
  now?: () => number;
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

  constructor(private readonly options: ReloadFilterOptions = {}) {}

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

/** Sends one request and resolves with the reply's bytes; rejects on an error reply or a timeout. */
export type Requester = (subject: string, data: Uint8Array) => Promise<Uint8Array>;

/** Bodies larger than this are not fetched: no policy set comes near it. */
export const MAX_BODY_BYTES = 256 * 1024 * 1024;

/**
 * The whole reload, when it came as a head with a `transfer` (its body was
 * too large for one message): asks the announcing sentinel for each part, and
 * checks the body against the SHA-256 in the head, which the signature
 * covers, and against its revision. A payload that carries its body is
 * returned as it is.
 */
export async function fetchReloadBody(payload: PolicyReloadPayload, request: Requester): Promise<PolicyReloadPayload & ReloadBody> {
  const { transfer, ...head } = payload;
  if (!transfer) return payload as PolicyReloadPayload & ReloadBody;
  const { subject, sha256, bytes, parts, partBytes } = transfer;
  if (!Number.isSafeInteger(bytes) || bytes < 0 || bytes > MAX_BODY_BYTES || parts !== Math.ceil(bytes / partBytes)) {
    throw new Error('the transfer is malformed');
  }
  const body = new Uint8Array(bytes);
  for (let part = 0; part < parts; part++) {
    const chunk = await request(subject, new TextEncoder().encode(JSON.stringify({ sha256, part })));
    const expected = Math.min(partBytes, bytes - part * partBytes);
    if (chunk.byteLength !== expected) throw new Error(`part ${part} has ${chunk.byteLength} bytes, expected ${expected}`);
    body.set(chunk, part * partBytes);
  }
  if (createHash('sha256').update(body).digest('hex') !== sha256) throw new Error('the body does not match the SHA-256 of its head');
  const whole = { ...head, ...(JSON.parse(new TextDecoder().decode(body)) as ReloadBody) } as PolicyReloadPayload & ReloadBody;
  const verdict = checkConsistency(whole);
  if (!verdict.ok) throw new Error(`the body does not match its head: ${verdict.reason}`);
  return whole;
}

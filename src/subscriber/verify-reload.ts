import { checkConsistency } from '../policy/announcements.js';
import { checkSignature } from '../policy/signature.js';

export type VerifyReason = 'unsigned' | 'wrong key' | 'bad signature' | 'revision mismatch' | 'content mismatch' | 'malformed';
export type VerifyResult = { ok: true; key: string } | { ok: false; reason: VerifyReason };

/**
 * Checks a reload message (the whole envelope, as received) against the
 * public keys a subscriber trusts: signed by one of them over every byte of
 * it (see signature.ts), its revision the one its files hash to, and each
 * file's bytes the ones announced. Never throws. Whether it is fresh, for
 * this deployment, and newer than what was applied is `ReloadFilter`'s.
 */
export function verifyReload(message: unknown, publicKeys: string | readonly string[]): VerifyResult {
  const signed = checkSignature(message, publicKeys);
  if (!signed.ok) return signed;
  const consistent = checkConsistency((message as { payload: unknown }).payload);
  return consistent.ok ? signed : consistent;
}

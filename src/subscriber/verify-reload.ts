import { checkConsistency } from '../policy/announcements.js';
import { checkSignature } from '../policy/signature.js';

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

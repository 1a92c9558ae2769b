import { canonicalJson } from './canonical-json.js';
import { verifySignature, type SigningKey } from './ed25519.js';

/**
 * A signed Nachos envelope: an Ed25519 signature, in `payload.signature`,
 * over a purpose prefix and the whole envelope in the JSON Canonicalization
 * Scheme (RFC 8785), less two fields: the signature itself, and
 * `correlationId`, which only pairs a reply with its request (a reply may be
 * a message signed once and served to many, each with its own id; it
 * asserts nothing). The prefix names what the bytes are for, so a signature
 * made for one purpose (a policy set, a heartbeat) is never valid for another.
 */

export const SIGNATURE_ALGORITHM = 'ed25519-nkey';

export interface MessageSignature {
  alg: typeof SIGNATURE_ALGORITHM;
  /** The signer's public NKey: the key id, looked up among the keys a receiver trusts. */
  key: string;
  /** Base64url (no padding) of the 64-byte Ed25519 signature of the signed bytes. */
  sig: string;
}

/** An envelope whose payload is an object, which can carry a signature. */
export interface SignableMessage {
  correlationId?: string | undefined;
  payload: { signature?: MessageSignature | undefined };
}

export type SignatureCheck = { ok: true; key: string } | { ok: false; reason: 'unsigned' | 'wrong key' | 'bad signature' | 'malformed' };

/** The bytes a signature covers: the purpose prefix, then the message without its signature and correlation id, canonical. */
export function signedBytes(prefix: string, message: SignableMessage): Uint8Array {
  const { signature: _signature, ...payload } = message.payload as Record<string, unknown>;
  const { correlationId: _correlationId, ...envelope } = message as unknown as Record<string, unknown>;
  return new TextEncoder().encode(prefix + canonicalJson({ ...envelope, payload }));
}

/** Sets `message.payload.signature` with `key`; call it last, once the message is final. */
export function signMessage<M extends SignableMessage>(message: M, prefix: string, key: SigningKey): M {
  const sig = key.sign(signedBytes(prefix, message)).toString('base64url');
  message.payload.signature = { alg: SIGNATURE_ALGORITHM, key: key.publicKey, sig };
  return message;
}

/** Checks a message's signature against the keys a receiver trusts (any one of them). Never throws. */
export function checkMessageSignature(message: unknown, prefix: string, trusted: readonly string[]): SignatureCheck {
  const m = message as Partial<SignableMessage> | null;
  if (!m || typeof m !== 'object' || !m.payload || typeof m.payload !== 'object' || Array.isArray(m.payload)) return { ok: false, reason: 'malformed' };
  const signature = m.payload.signature as Partial<MessageSignature> | undefined;
  if (!signature || typeof signature !== 'object' || typeof signature.sig !== 'string' || typeof signature.key !== 'string') return { ok: false, reason: 'unsigned' };
  if (signature.alg !== SIGNATURE_ALGORITHM || !trusted.includes(signature.key)) return { ok: false, reason: 'wrong key' };
  // Exactly the 86 characters of 64 bytes, the last one's 4 spare bits zero: a lenient decoder would take
  // padding, stray characters or other spare bits too, and the same signature would have many spellings.
  if (!/^[A-Za-z0-9_-]{85}[AQgw]$/.test(signature.sig)) return { ok: false, reason: 'bad signature' };
  let bytes: Uint8Array;
  try {
    bytes = signedBytes(prefix, m as SignableMessage);
  } catch {
    // Not canonicalisable (NaN cannot come from JSON): not a message anyone signed.
    return { ok: false, reason: 'bad signature' };
  }
  return verifySignature(signature.key, bytes, Buffer.from(signature.sig, 'base64url')) ? { ok: true, key: signature.key } : { ok: false, reason: 'bad signature' };
}

import { fromPublic, fromSeed } from '@nats-io/nkeys';
import { canonicalJson } from './canonical-json.js';

/**
 * Signed reloads: with a signing seed (an NKey), every reload message, and
 * every reply on `nachos.system.policy.current`, carries an Ed25519 signature
 * over the whole message, so a subscriber that knows the public key can refuse
 * one that the sentinel did not send, or that was altered on the way.
 *
 * The signed bytes, in this order:
 *
 *     nachos-sentinel reload v2\n
 *     <the envelope, without payload.signature, in the JSON Canonicalization Scheme (RFC 8785)>
 *
 * so the documents, each file's contents, paths, the revision, the reason, the
 * sequence and the time issued are all covered, and so are the envelope's id,
 * timestamp, source, type and correlation id. The signature sits in
 * `payload.signature`: `{ alg: "ed25519-nkey", key: <public NKey>, sig: <base64url, no padding> }`.
 */

export const SIGNATURE_ALGORITHM = 'ed25519-nkey';
/** Domain separation: these bytes can never be taken for another protocol's signed message. */
export const SIGNED_PREFIX = 'nachos-sentinel reload v2\n';

export interface ReloadSignature {
  alg: typeof SIGNATURE_ALGORITHM;
  /** The signer's public NKey. */
  key: string;
  /** Base64url (no padding) of the 64-byte Ed25519 signature of the signed bytes. */
  sig: string;
}

/** A message that can be signed: an envelope whose payload is an object. */
export interface SignableMessage {
  payload: { signature?: ReloadSignature | undefined };
}

/** The bytes a signature covers: the prefix, then the message without its signature, canonical. */
export function signedBytes(message: SignableMessage): Uint8Array {
  const { signature: _signature, ...payload } = message.payload as Record<string, unknown>;
  return new TextEncoder().encode(SIGNED_PREFIX + canonicalJson({ ...message, payload }));
}

/** Signs reloads with an NKey seed (`S...`). Throws a TypeError when the seed is not one. */
export class ReloadSigner {
  readonly publicKey: string;
  private readonly pair;

  constructor(seed: string) {
    try {
      this.pair = fromSeed(new TextEncoder().encode(seed.trim()));
    } catch {
      // Never echo the seed: it is the secret.
      throw new TypeError('not an NKey seed (expected the S... form)');
    }
    this.publicKey = this.pair.getPublicKey();
  }

  /** Sets `message.payload.signature`; call it last, once the message is final. */
  sign<M extends SignableMessage>(message: M): M {
    const sig = Buffer.from(this.pair.sign(signedBytes(message))).toString('base64url');
    message.payload.signature = { alg: SIGNATURE_ALGORITHM, key: this.publicKey, sig };
    return message;
  }
}

export type SignatureVerdict = { ok: true } | { ok: false; reason: 'unsigned' | 'wrong key' | 'bad signature' | 'malformed' };

/** Whether `key` is a public NKey that can check signatures (an account, user, operator or server key). */
export function isPublicKey(key: string): boolean {
  try {
    fromPublic(key);
    return true;
  } catch {
    return false;
  }
}

/** Checks the signature of a message against the public key a subscriber trusts. Never throws. */
export function checkSignature(message: unknown, publicKey: string): SignatureVerdict {
  const m = message as Partial<SignableMessage> | null;
  if (!m || typeof m !== 'object' || !m.payload || typeof m.payload !== 'object' || Array.isArray(m.payload)) return { ok: false, reason: 'malformed' };
  const signature = m.payload.signature as Partial<ReloadSignature> | undefined;
  if (!signature || typeof signature.sig !== 'string' || typeof signature.key !== 'string') return { ok: false, reason: 'unsigned' };
  if (signature.alg !== SIGNATURE_ALGORITHM || signature.key !== publicKey) return { ok: false, reason: 'wrong key' };
  // Exactly the 86 characters of 64 bytes, the last one's 4 spare bits zero: a lenient decoder would take
  // padding, stray characters or other spare bits too, and the same signature would have many spellings.
  if (!/^[A-Za-z0-9_-]{85}[AQgw]$/.test(signature.sig)) return { ok: false, reason: 'bad signature' };
  try {
    const valid = fromPublic(publicKey).verify(signedBytes(m as SignableMessage), Buffer.from(signature.sig, 'base64url'));
    return valid ? { ok: true } : { ok: false, reason: 'bad signature' };
  } catch {
    // Not canonicalisable (NaN, a cycle cannot come from JSON), or not a key: not a message we signed.
    return { ok: false, reason: 'bad signature' };
  }
}

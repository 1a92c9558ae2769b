import type { SigningKey } from '../trust/ed25519.js';
import { checkMessageSignature, signedBytes as signedMessageBytes, signMessage, type MessageSignature, type SignableMessage, type SignatureCheck } from '../trust/signed-message.js';

/**
 * Signed policy sets: with a signing seed (an NKey), every reload message
 * carries an Ed25519 signature over the whole message (see
 * trust/signed-message.ts), so a subscriber that trusts the public key can
 * refuse one the sentinel did not send, or that was altered on the way.
 *
 * The signed bytes, in this order:
 *
 *     nachos-sentinel reload v3\n      (v4 for a reload with an audience, a canary's)
 *     <the envelope, without payload.signature and correlationId, in the JSON Canonicalization Scheme (RFC 8785)>
 *
 * so the documents, each file's contents, paths, the revision, the reason,
 * the sequence, the time issued and the expiry, the deployment, and the
 * envelope's id, timestamp, source and type (the subject it was announced on)
 * are all covered. The prefix is the purpose: a heartbeat signed with the
 * same key can never pass for a policy set. The signature sits in
 * `payload.signature`: `{ alg: "ed25519-nkey", key: <public NKey>, sig: <base64url, no padding> }`.
 */

/** Domain separation: these bytes can never be taken for another protocol's, or another purpose's, signed message. */
export const SIGNED_PREFIX = 'nachos-sentinel reload v3\n';
/**
 * A reload with an audience (schemaVersion 4) is signed under its own prefix: a receiver that predates
 * audiences checks v3 only, so it refuses a canary's set instead of taking a set that is not for it.
 */
export const AUDIENCE_SIGNED_PREFIX = 'nachos-sentinel reload v4\n';

/** The prefix a message is signed under: by its payload's schemaVersion (4: with an audience). */
function prefixOf(message: unknown): string {
  return (message as { payload?: { schemaVersion?: unknown } } | null)?.payload?.schemaVersion === 4 ? AUDIENCE_SIGNED_PREFIX : SIGNED_PREFIX;
}
export { SIGNATURE_ALGORITHM } from '../trust/signed-message.js';
export type ReloadSignature = MessageSignature;
export { isPublicKey } from '../trust/nkey.js';

/** The bytes a reload's signature covers. */
export function signedBytes(message: SignableMessage): Uint8Array {
  return signedMessageBytes(prefixOf(message), message);
}

/** Signs reload messages with a key made from an NKey seed. */
export class ReloadSigner {
  constructor(private readonly key: SigningKey) {}

  get publicKey(): string {
    return this.key.publicKey;
  }

  /** Sets `message.payload.signature`; call it last, once the message is final. */
  sign<M extends SignableMessage>(message: M): M {
    return signMessage(message, prefixOf(message), this.key);
  }
}

export type SignatureVerdict = SignatureCheck;

/** Checks a reload's signature against the keys a subscriber trusts (one of them signed it). Never throws. */
export function checkSignature(message: unknown, publicKeys: string | readonly string[]): SignatureVerdict {
  return checkMessageSignature(message, prefixOf(message), typeof publicKeys === 'string' ? [publicKeys] : publicKeys);
}

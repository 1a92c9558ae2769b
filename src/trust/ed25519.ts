import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { decodePublicKey, decodeSeed, encodePublicKey } from './nkey.js';

/**
 * Ed25519 with Node's own crypto (OpenSSL: microseconds a signature, where
 * Ed25519 in JavaScript takes milliseconds), keys in the NKey encoding users
 * handle. The raw keys are wrapped in their fixed DER headers, the form
 * `node:crypto` takes (RFC 8410).
 */

/** PKCS #8 for an Ed25519 private key: this header, then the 32-byte seed. */
const PKCS8_HEADER = Buffer.from('302e020100300506032b657004220420', 'hex');
/** SubjectPublicKeyInfo for an Ed25519 public key: this header, then the 32-byte key. */
const SPKI_HEADER = Buffer.from('302a300506032b6570032100', 'hex');

/** Public keys turned into key objects, kept for the next message (bounded: keys come from the network). */
const verifiers = new Map<string, KeyObject>();
const MAX_VERIFIERS = 256;

/** A signing key made from an NKey seed. Throws a TypeError that never echoes the seed. */
export class SigningKey {
  /** The public NKey: what verifiers are given, and the key id in every signature. */
  readonly publicKey: string;
  private readonly key: KeyObject;

  constructor(seed: string) {
    const decoded = decodeSeed(seed.trim());
    if (!decoded) throw new TypeError('not an NKey seed (expected the S... form, 58 characters)');
    this.key = createPrivateKey({ key: Buffer.concat([PKCS8_HEADER, decoded.raw]), format: 'der', type: 'pkcs8' });
    const spki = createPublicKey(this.key).export({ format: 'der', type: 'spki' });
    this.publicKey = encodePublicKey(decoded.role, spki.subarray(SPKI_HEADER.length));
  }

  /** The 64-byte Ed25519 signature of `bytes`. */
  sign(bytes: Uint8Array): Buffer {
    return sign(null, bytes, this.key);
  }
}

/** Whether `signature` is `publicKey`'s (an NKey) over `bytes`. Never throws. */
export function verifySignature(publicKey: string, bytes: Uint8Array, signature: Uint8Array): boolean {
  let key = verifiers.get(publicKey);
  if (!key) {
    const decoded = decodePublicKey(publicKey);
    if (!decoded) return false;
    key = createPublicKey({ key: Buffer.concat([SPKI_HEADER, decoded.raw]), format: 'der', type: 'spki' });
    if (verifiers.size >= MAX_VERIFIERS) verifiers.clear();
    verifiers.set(publicKey, key);
  }
  try {
    return signature.byteLength === 64 && verify(null, bytes, key, signature);
  } catch {
    return false;
  }
}

import { fromPublic, fromSeed } from '@nats-io/nkeys';
import { sha256sumLines } from './sha256sum.js';
import { computeRevision, type SnapshotFile } from './snapshot.js';

/**
 * Signed reloads: with a signing seed (an NKey), every reload carries an
 * Ed25519 signature over its revision and file hashes, so a subscriber that
 * knows the public key can refuse a reload it did not come from the sentinel,
 * or that was altered on the way.
 *
 * The signed bytes, UTF-8:
 *
 *     nachos-sentinel reload v1
 *     revision <revision>
 *     <sha256>  <path>          (one line per file, in byte order of path)
 */

export const SIGNATURE_ALGORITHM = 'ed25519-nkey';

export interface ReloadSignature {
  alg: typeof SIGNATURE_ALGORITHM;
  /** The signer's public NKey. */
  key: string;
  /** Base64url signature of the signed bytes. */
  sig: string;
}

/** What a reload needs to carry to be checked. */
export interface SignedFields {
  revision: string;
  files: readonly Pick<SnapshotFile, 'path' | 'sha256'>[];
  signature?: ReloadSignature | undefined;
}

export function signedBytes(revision: string, files: SignedFields['files']): Uint8Array {
  return new TextEncoder().encode(`nachos-sentinel reload v1\nrevision ${revision}\n${sha256sumLines(files)}`);
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

  sign(revision: string, files: SignedFields['files']): ReloadSignature {
    const sig = Buffer.from(this.pair.sign(signedBytes(revision, files))).toString('base64url');
    return { alg: SIGNATURE_ALGORITHM, key: this.publicKey, sig };
  }
}

export type VerifyResult = { ok: true } | { ok: false; reason: 'unsigned' | 'wrong key' | 'bad signature' | 'revision mismatch' | 'malformed' };

/**
 * Checks a reload payload against the public key a subscriber trusts: it must
 * be signed by that key, over exactly these files and revision, and the
 * revision must be the one those files hash to. Never throws.
 */
export function verifyReload(payload: unknown, publicKey: string): VerifyResult {
  const p = payload as Partial<SignedFields> | null;
  if (!p || typeof p.revision !== 'string' || !Array.isArray(p.files)) return { ok: false, reason: 'malformed' };
  const files = p.files as SignedFields['files'];
  if (!files.every((f) => typeof f?.path === 'string' && typeof f?.sha256 === 'string')) return { ok: false, reason: 'malformed' };
  if (computeRevision(files) !== p.revision) return { ok: false, reason: 'revision mismatch' };
  const signature = p.signature;
  if (!signature || typeof signature.sig !== 'string' || typeof signature.key !== 'string') return { ok: false, reason: 'unsigned' };
  if (signature.alg !== SIGNATURE_ALGORITHM || signature.key !== publicKey) return { ok: false, reason: 'wrong key' };
  try {
    const valid = fromPublic(publicKey).verify(signedBytes(p.revision, files), Buffer.from(signature.sig, 'base64url'));
    return valid ? { ok: true } : { ok: false, reason: 'bad signature' };
  } catch {
    return { ok: false, reason: 'bad signature' };
  }
}

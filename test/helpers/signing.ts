import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createAccount, type KeyPair } from '@nats-io/nkeys';

/** A signing key made by the NATS tooling's own library: its seed in a file only its owner may read, as a seed must be. */
export function signingKey(dir: string, name = 'signing.nk'): { kp: KeyPair; seed: string; seedFile: string; publicKey: string } {
  const kp = createAccount();
  const seed = new TextDecoder().decode(kp.getSeed());
  const seedFile = path.join(dir, name);
  writeFileSync(seedFile, seed, { mode: 0o600 });
  return { kp, seed, seedFile, publicKey: kp.getPublicKey() };
}

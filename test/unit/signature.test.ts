import { createAccount, createUser } from '@nats-io/nkeys';
import { describe, expect, it } from 'vitest';
import { computeRevision, digestFiles } from '../../src/policy/snapshot.js';
import { ReloadSigner, signedBytes, verifyReload } from '../../src/policy/signature.js';
import { ReloadFilter } from '../../src/subscriber.js';

const seedOf = (kp: { getSeed(): Uint8Array }) => new TextDecoder().decode(kp.getSeed());

function payload(signer?: ReloadSigner) {
  const files = digestFiles([
    { path: 'a.toml', kind: 'policy', content: Buffer.from('a') },
    { path: 'b.toml', kind: 'policy', content: Buffer.from('b') },
  ]);
  const revision = computeRevision(files);
  return { revision, files, ...(signer ? { signature: signer.sign(revision, files) } : {}) };
}

describe('signed reloads', () => {
  const key = createAccount();
  const signer = new ReloadSigner(seedOf(key));

  it('verifies a reload signed by the trusted key', () => {
    expect(signer.publicKey).toBe(key.getPublicKey());
    expect(verifyReload(payload(signer), key.getPublicKey())).toEqual({ ok: true });
  });

  it('refuses unsigned, wrongly signed, altered or forged reloads', () => {
    const good = payload(signer);
    expect(verifyReload(payload(), key.getPublicKey())).toEqual({ ok: false, reason: 'unsigned' });
    const other = new ReloadSigner(seedOf(createUser()));
    expect(verifyReload(payload(other), key.getPublicKey())).toEqual({ ok: false, reason: 'wrong key' });
    // A file's hash changed (and the revision recomputed to match): the signature no longer fits.
    const files = good.files.map((f, i) => (i === 0 ? { ...f, sha256: 'f'.repeat(64) } : f));
    expect(verifyReload({ ...good, files, revision: computeRevision(files) }, key.getPublicKey())).toEqual({ ok: false, reason: 'bad signature' });
    // The revision does not match the files.
    expect(verifyReload({ ...good, revision: '0'.repeat(64) }, key.getPublicKey())).toEqual({ ok: false, reason: 'revision mismatch' });
    // Another key's signature presented under the trusted key's name.
    const forged = { ...good, signature: { ...other.sign(good.revision, good.files), key: key.getPublicKey() } };
    expect(verifyReload(forged, key.getPublicKey())).toEqual({ ok: false, reason: 'bad signature' });
    for (const junk of [null, 42, 'x', {}, { revision: 'r', files: [1] }]) expect(verifyReload(junk, key.getPublicKey()).ok).toBe(false);
  });

  it('signs the revision and every file hash, in path order', () => {
    const text = new TextDecoder().decode(signedBytes('r1', [{ path: 'b', sha256: '2' }, { path: 'a', sha256: '1' }]));
    expect(text).toBe('nachos-sentinel reload v1\nrevision r1\n1  a\n2  b\n');
  });

  it('refuses a seed that is not one, without echoing it', () => {
    expect(() => new ReloadSigner('SUAnotaseedatall')).toThrow(/^not an NKey seed/);
    try {
      new ReloadSigner('SUAnotaseedatall');
    } catch (err) {
      expect((err as Error).message).not.toContain('SUAnotaseedatall');
    }
  });

  it('lets a subscriber drop duplicates by revision and refuse what the key did not sign', () => {
    const filter = new ReloadFilter({ publicKey: key.getPublicKey() });
    const signed = payload(signer);
    expect(filter.accept({ payload: signed })).toMatchObject({ accept: true });
    expect(filter.accept({ payload: signed })).toEqual({ accept: false, reason: 'duplicate' });
    expect(filter.accept({ payload: payload() })).toEqual({ accept: false, reason: 'unsigned' });
    expect(new ReloadFilter().accept(payload())).toMatchObject({ accept: true });
  });
});

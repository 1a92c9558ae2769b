import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createAccount, createCluster, createOperator, createServer, createUser, fromSeed } from '@nats-io/nkeys';
import { describe, expect, it } from 'vitest';
import { makeEnvelope, type Envelope } from '../../src/protocol/envelope.js';
import { contentBytes, fileContent, reloadBody, reloadHead, type PolicyReloadPayload } from '../../src/policy/announcements.js';
import { canonicalJson } from '../../src/trust/canonical-json.js';
import { buildSnapshot } from '../../src/policy/snapshot.js';
import { ReloadSigner, signedBytes } from '../../src/policy/signature.js';
import { SigningKey } from '../../src/trust/ed25519.js';
import { decodePublicKey, decodeSeed, encodePublicKey, isSeed } from '../../src/trust/nkey.js';
import { ReloadFilter } from '../../src/subscriber/reload-filter.js';
import { verifyReload } from '../../src/subscriber/verify-reload.js';
import { SUBJECTS } from '../../src/protocol/topics.js';

const seedOf = (kp: { getSeed(): Uint8Array }) => new TextDecoder().decode(kp.getSeed());
const signerOf = (kp: { getSeed(): Uint8Array }) => new ReloadSigner(new SigningKey(seedOf(kp)));
const fixtures = path.resolve(import.meta.dirname, '../fixtures/nachos-style');

/** A real reload message, as the announcer builds it, from the Nachos-style fixture (skip-file: with skipped files and warnings too). */
function reload(
  options: {
    signer?: ReloadSigner;
    issuedAt?: number;
    sequence?: number;
    deployment?: string;
    validForMs?: number;
    subject?: string;
    audience?: string[];
    excludes?: string[];
  } = {},
): Envelope<PolicyReloadPayload> {
  const sources = readdirSync(fixtures)
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => ({ path: f, kind: 'policy' as const, content: readFileSync(path.join(fixtures, f)) }));
  sources.push({ path: 'bytes.yaml', kind: 'policy', content: Buffer.from('version: "1.0"\nrules: []\n# \xe9\n', 'latin1') });
  const built = buildSnapshot(sources, [], { allowEmpty: false, invalidFiles: 'skip-file' });
  if (!built.ok) throw new Error('fixture rejected');
  const announced = { snapshot: built.snapshot, previous: undefined, sequence: options.sequence ?? 3 };
  const issuedAt = options.issuedAt ?? Date.parse('2026-12-01T10:00:00.000Z');
  const issue = { issuedAt, validForMs: options.validForMs ?? 24 * 3_600_000, deployment: options.deployment ?? '', audience: options.audience, excludes: options.excludes };
  const payload = { ...reloadHead(announced, 'change', issue), ...reloadBody(announced) };
  const message = makeEnvelope(options.subject ?? SUBJECTS.policyReload, 'sentinel', payload, { now: issuedAt });
  // Through JSON, as a subscriber receives it.
  const received = JSON.parse(JSON.stringify(options.signer ? options.signer.sign(message) : message)) as Envelope<PolicyReloadPayload>;
  return received;
}

/** Every leaf of a JSON value, as a path. */
function leaves(value: unknown, at: (string | number)[] = []): (string | number)[][] {
  if (value === null || typeof value !== 'object') return [at];
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v] as const) : Object.entries(value);
  return entries.flatMap(([k, v]) => leaves(v, [...at, k]));
}

function tampered(message: unknown, at: (string | number)[]): unknown {
  const copy = structuredClone(message) as Record<string | number, unknown>;
  let parent = copy;
  for (const key of at.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
  const key = at[at.length - 1] as string | number;
  const old = parent[key];
  parent[key] = typeof old === 'string' ? (old.length > 0 ? `${old.slice(0, -1)}${old.endsWith('x') ? 'y' : 'x'}` : 'x') : typeof old === 'number' ? old + 1 : typeof old === 'boolean' ? !old : 'x';
  return copy;
}

describe('signed reloads', () => {
  const key = createAccount();
  const signer = signerOf(key);
  const publicKey = key.getPublicKey();

  it('verifies a real reload signed by the trusted key; the bytes are the prefix and the canonical message', () => {
    const message = reload({ signer });
    expect(signer.publicKey).toBe(publicKey);
    expect(message.payload.signature).toMatchObject({ alg: 'ed25519-nkey', key: publicKey, sig: expect.stringMatching(/^[A-Za-z0-9_-]{86}$/) });
    expect(verifyReload(message, publicKey)).toEqual({ ok: true, key: publicKey });
    const text = new TextDecoder().decode(signedBytes(message));
    const { signature: _s, ...unsigned } = message.payload;
    expect(text).toBe(`nachos-sentinel reload v3\n${canonicalJson({ ...message, payload: unsigned })}`);
    // The correlation id pairs a reply with its request and asserts nothing: it is left out of the signed bytes.
    expect(verifyReload({ correlationId: 'any', ...message }, publicKey)).toEqual({ ok: true, key: publicKey });
    expect(new TextDecoder().decode(signedBytes({ correlationId: 'any', ...message }))).toBe(text);
    // Every file travels with its exact bytes (text as is); the file that is not UTF-8 was skipped, and says why.
    expect(message.payload.files?.find((f) => f.path === 'baseline.yaml')?.content).toBe(readFileSync(path.join(fixtures, 'baseline.yaml'), 'utf8'));
    expect(message.payload.skipped?.find((s) => s.path === 'bytes.yaml')?.problems[0]?.message).toMatch(/^not valid UTF-8 text/);
    // Bytes that are not text would travel as base64, and come back exact.
    const latin1 = Buffer.from('caf\xe9', 'latin1');
    expect(fileContent(latin1)).toEqual({ content: latin1.toString('base64'), encoding: 'base64' });
    expect(contentBytes(fileContent(latin1))?.equals(latin1)).toBe(true);
    expect(fileContent(Buffer.from('café'))).toEqual({ content: 'café' });
  });

  it('refuses the message when any field a subscriber can act on is changed, each in turn', () => {
    const message = reload({ signer });
    const paths = leaves(message).filter((p) => !(p[0] === 'payload' && p[1] === 'signature'));
    // The documents, every file's contents and paths, the revision, reason, sequence, time, warnings, skipped files, the envelope.
    for (const needed of [['payload', 'revision'], ['payload', 'reason'], ['payload', 'sequence'], ['payload', 'issuedAt'], ['payload', 'expiresAt'], ['payload', 'deployment'], ['id'], ['timestamp'], ['type'], ['source']]) {
      expect(paths.some((p) => p.join('/') === needed.join('/'))).toBe(true);
    }
    for (const prefix of ['payload/policies/0/document/rules', 'payload/files/0/content', 'payload/files/0/path', 'payload/skipped/0/problems', 'payload/warnings/0/message']) {
      expect(paths.some((p) => p.join('/').startsWith(prefix)), prefix).toBe(true);
    }
    expect(paths.length).toBeGreaterThan(100);
    for (const at of paths) {
      expect(verifyReload(tampered(message, at), publicKey), at.join('/')).toMatchObject({ ok: false });
    }
    // Keys added or taken away, the signature itself altered or padded.
    const { previous: _p, ...withoutPrevious } = message.payload;
    expect(verifyReload({ ...message, payload: withoutPrevious }, publicKey).ok).toBe(false);
    expect(verifyReload({ ...message, extra: 1 }, publicKey).ok).toBe(false);
    const sig = message.payload.signature?.sig ?? '';
    // The last character carries 2 bits of the signature and 4 spare ones: every other spelling of it is refused.
    const spellings = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'].filter((c) => c !== sig.at(-1)).map((c) => `${sig.slice(0, -1)}${c}`);
    for (const bad of [`${sig}=`, sig.slice(1), ...spellings]) {
      expect(verifyReload({ ...message, payload: { ...message.payload, signature: { ...message.payload.signature, sig: bad } } }, publicKey)).toEqual({ ok: false, reason: 'bad signature' });
    }
  });

  it('names why: unsigned, wrong key, forged, and a consistent-looking message with a changed rule', () => {
    expect(verifyReload(reload(), publicKey)).toEqual({ ok: false, reason: 'unsigned' });
    const other = signerOf(createUser());
    expect(verifyReload(reload({ signer: other }), publicKey)).toEqual({ ok: false, reason: 'wrong key' });
    const forged = reload({ signer: other });
    forged.payload.signature = { ...forged.payload.signature!, key: publicKey };
    expect(verifyReload(forged, publicKey)).toEqual({ ok: false, reason: 'bad signature' });
    // The attack as found: the first deny rule turned into an allow.
    const message = reload({ signer });
    const rule = message.payload.policies?.flatMap((p) => p.document.rules).find((r) => r.effect === 'deny');
    if (rule) rule.effect = 'allow';
    expect(verifyReload(message, publicKey)).toEqual({ ok: false, reason: 'bad signature' });
    for (const junk of [null, 42, 'x', {}, { payload: null }, { payload: [] }]) expect(verifyReload(junk, publicKey).ok).toBe(false);
  });

  it('refuses a seed that is not one, without echoing it', () => {
    expect(() => new SigningKey('SUAnotaseedatall')).toThrow(/^not an NKey seed/);
    try {
      new SigningKey('SUAnotaseedatall');
    } catch (err) {
      expect((err as Error).message).not.toContain('SUAnotaseedatall');
    }
  });
});

describe('keys: NKeys read and written as the NATS tooling does, signed with Node\'s own Ed25519', () => {
  it('reads and writes every signing role as @nats-io/nkeys does, and refuses curve keys, bad checksums and other spellings', () => {
    for (const make of [createAccount, createUser, createOperator, createServer, createCluster]) {
      for (let i = 0; i < 50; i++) {
        const kp = make();
        const pub = kp.getPublicKey();
        const decoded = decodePublicKey(pub);
        expect(decoded && encodePublicKey(decoded.role, decoded.raw)).toBe(pub);
        expect(decodeSeed(seedOf(kp))?.role).toBe(decoded?.role);
        expect(isSeed(seedOf(kp))).toBe(true);
        expect(isSeed(pub)).toBe(false);
        // The key made from the seed is the one nkeys makes.
        expect(new SigningKey(seedOf(kp)).publicKey).toBe(pub);
      }
    }
    const pub = createAccount().getPublicKey();
    const flipped = `${pub.slice(0, 10)}${pub[10] === 'A' ? 'B' : 'A'}${pub.slice(11)}`;
    expect(decodePublicKey(flipped)).toBeUndefined();
    expect(decodePublicKey(pub.toLowerCase())).toBeUndefined();
    expect(decodePublicKey(`${pub}A`)).toBeUndefined();
  });

  it('signs byte for byte as the JavaScript Ed25519 of @nats-io/nkeys did (Ed25519 is deterministic), and each verifies the other', () => {
    for (let i = 0; i < 20; i++) {
      const kp = i % 2 ? createAccount() : createUser();
      const key = new SigningKey(seedOf(kp));
      const bytes = signedBytes(reload({ sequence: i + 1 }));
      const ours = key.sign(bytes);
      expect(Buffer.from(kp.sign(bytes)).equals(ours)).toBe(true);
      expect(fromSeed(kp.getSeed()).verify(bytes, ours)).toBe(true);
    }
  });
});

describe('ReloadFilter', () => {
  const key = createAccount();
  const signer = signerOf(key);
  const publicKey = key.getPublicKey();
  const at = (iso: string) => Date.parse(iso);
  const now = () => at('2026-12-01T10:30:00Z');

  it('drops duplicates by revision and refuses what the key did not sign', () => {
    const filter = new ReloadFilter({ publicKeys: publicKey, now });
    const signed = reload({ signer });
    expect(filter.accept(signed)).toMatchObject({ accept: true });
    expect(filter.accept(reload({ signer, issuedAt: at('2026-12-01T10:00:01Z') }))).toMatchObject({ accept: false, reason: 'duplicate' });
    expect(filter.accept(reload())).toEqual({ accept: false, reason: 'unsigned' });
    expect(new ReloadFilter({ now }).accept(reload().payload)).toMatchObject({ accept: true });
  });

  it('refuses a set signed by the right key for another deployment, or as another kind of message', () => {
    const filter = new ReloadFilter({ publicKeys: [publicKey], deployment: 'prod', now });
    expect(filter.check(reload({ signer, deployment: 'staging' }))).toMatchObject({ accept: false, reason: 'wrong deployment' });
    expect(filter.check(reload({ signer }))).toMatchObject({ accept: false, reason: 'wrong deployment' });
    expect(filter.check(reload({ signer, deployment: 'prod', subject: SUBJECTS.policyRejected }))).toMatchObject({ accept: false, reason: 'not a reload' });
    expect(filter.check(reload({ signer, deployment: 'prod' }))).toMatchObject({ accept: true });
  });

  it('refuses an issuedAt beyond the clock skew allowed, which never moves the replay mark, and an expired statement', () => {
    const filter = new ReloadFilter({ publicKeys: [publicKey], now });
    const future = reload({ signer, issuedAt: at('2027-12-01T10:00:00Z'), sequence: 9 });
    expect(filter.accept(future)).toEqual({ accept: false, reason: 'from the future' });
    // Within the skew: taken.
    expect(filter.accept(reload({ signer, issuedAt: at('2026-12-01T10:34:00Z'), sequence: 2 }))).toMatchObject({ accept: true });
    const later = new ReloadFilter({ publicKeys: [publicKey], now });
    expect(later.accept(future)).toMatchObject({ reason: 'from the future' });
    // The mark did not move: a reload of now is still taken.
    expect(later.accept(reload({ signer, issuedAt: at('2026-12-01T10:20:00Z') }))).toMatchObject({ accept: true });
    // Signed an hour ago for a quarter of an hour: expired.
    const expired = reload({ signer, issuedAt: at('2026-12-01T09:30:00Z'), validForMs: 15 * 60_000 });
    expect(new ReloadFilter({ publicKeys: [publicKey], now }).check(expired)).toMatchObject({ accept: false, reason: 'expired' });
    // A signed statement without an end is not taken.
    const endless = reload({ signer });
    delete (endless.payload as Partial<PolicyReloadPayload>).expiresAt;
    delete endless.payload.signature;
    signer.sign(endless);
    expect(new ReloadFilter({ publicKeys: [publicKey], now }).check(endless)).toMatchObject({ accept: false, reason: 'malformed' });
  });

  it('moves nothing on check; a revision counts as applied only once applied; a fresher statement of it confirms it', () => {
    const filter = new ReloadFilter({ publicKeys: [publicKey], now });
    const first = reload({ signer, issuedAt: at('2026-12-01T10:00:00Z') });
    expect(filter.check(first)).toMatchObject({ accept: true });
    expect(filter.check(first)).toMatchObject({ accept: true });
    expect(filter.confirmation).toBeUndefined();
    filter.applied(first.payload);
    expect(filter.check(first)).toMatchObject({ accept: false, reason: 'duplicate' });
    expect(filter.confirmation).toMatchObject({ issuedAt: at('2026-12-01T10:00:00Z'), expiresAt: at('2026-12-02T10:00:00Z') });
    filter.check(reload({ signer, issuedAt: at('2026-12-01T10:20:00Z') }));
    expect(filter.confirmation).toMatchObject({ issuedAt: at('2026-12-01T10:20:00Z'), expiresAt: at('2026-12-02T10:20:00Z') });
  });

  it('takes several keys at once, and refuses, after a rotation, what the removed key signs and replays signed by either', () => {
    const next = createAccount();
    const nextSigner = signerOf(next);
    const both = new ReloadFilter({ publicKeys: [publicKey, next.getPublicKey()], now });
    const old = reload({ signer, issuedAt: at('2026-12-01T10:00:00Z'), sequence: 1 });
    const newer = withoutFiles(reload({ signer: nextSigner, issuedAt: at('2026-12-01T10:10:00Z'), sequence: 2 }), nextSigner);
    expect(both.accept(old)).toMatchObject({ accept: true });
    expect(both.accept(newer)).toMatchObject({ accept: true });
    // One mark across keys: the old key's older set cannot come back.
    expect(both.accept(old)).toEqual({ accept: false, reason: 'replayed', payload: expect.anything() });
    const rotated = new ReloadFilter({ publicKeys: [next.getPublicKey()], now });
    expect(rotated.accept(reload({ signer, issuedAt: at('2026-12-01T10:20:00Z') }))).toEqual({ accept: false, reason: 'wrong key' });
    expect(rotated.accept(reload({ signer: nextSigner, issuedAt: at('2026-12-01T10:20:00Z') }))).toMatchObject({ accept: true });
  });

  it('refuses a signed reload older than the newest one it accepted from that key: no rollback by replay', () => {
    const filter = new ReloadFilter({ publicKeys: publicKey, now });
    const old = reload({ signer, issuedAt: at('2026-12-01T09:00:00Z'), sequence: 1 });
    // A newer set, announced later (its own files: a different revision).
    const newer = withoutFiles(reload({ signer, issuedAt: at('2026-12-01T10:00:00Z'), sequence: 2 }), signer);
    expect(filter.accept(old)).toMatchObject({ accept: true });
    expect(filter.accept(newer)).toMatchObject({ accept: true });
    expect(filter.accept(old)).toMatchObject({ accept: false, reason: 'replayed' });
    // Order is the signed time, not the sequence, which restarts with the sentinel.
    const afterRestart = reload({ signer, issuedAt: at('2026-12-01T10:20:00Z'), sequence: 1 });
    expect(filter.accept(afterRestart)).toMatchObject({ accept: true });
  });

  it('with maxAgeMs, refuses a reload issued longer ago than that', () => {
    const filter = new ReloadFilter({ publicKeys: publicKey, maxAgeMs: 5 * 60_000, now: () => at('2026-12-01T10:10:00Z') });
    expect(filter.accept(reload({ signer, issuedAt: at('2026-12-01T10:00:00Z') }))).toEqual({ accept: false, reason: 'expired' });
    expect(filter.accept(reload({ signer, issuedAt: at('2026-12-01T10:09:00Z') }))).toMatchObject({ accept: true });
  });

  it('checks unsigned messages for consistency too: files that do not hash to what they claim are refused', () => {
    const message = reload();
    const file = message.payload.files?.find((f) => f.content !== undefined && f.encoding === undefined);
    if (file) file.content += '\n# changed';
    expect(new ReloadFilter({ now }).accept(message)).toEqual({ accept: false, reason: 'content mismatch' });
    const other = reload();
    other.payload.revision = '0'.repeat(64);
    expect(new ReloadFilter({ now }).accept(other)).toEqual({ accept: false, reason: 'revision mismatch' });
    // A head whose transfer names any other subject than a sentinel's transfer subject is refused before anything is asked.
    for (const subject of ['$JS.API.STREAM.PURGE.policies', 'nachos.system.policy.transfer.*', 'nachos.system.policy.transfer.a.b', 'nachos.system.policy.transfer.>']) {
      const head = reload();
      const { files: _f, policies: _p, changed: _c, warnings: _w, skipped: _s, ...rest } = head.payload;
      const forged = { ...head, payload: { ...rest, transfer: { subject, sha256: '0'.repeat(64), bytes: 10, parts: 1, partBytes: 10 } } };
      expect(new ReloadFilter({ now }).accept(forged), subject).toEqual({ accept: false, reason: 'malformed' });
    }
  });
});

/** The message with no files (another revision), signed again by `by`. */
function withoutFiles(message: Envelope<PolicyReloadPayload>, by: ReloadSigner): Envelope<PolicyReloadPayload> {
  message.payload.files = [];
  message.payload.revision = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
  message.payload.policies = [];
  delete message.payload.signature;
  return by.sign(message);
}

describe('audiences: a canary\'s set, and the set everyone else keeps meanwhile', () => {
  const kp = createAccount();
  const key = kp.getPublicKey();
  const now = () => Date.parse('2026-12-01T10:00:01.000Z');
  const filter = (member?: { component: string; instance?: string }) => new ReloadFilter({ publicKeys: key, now, ...(member ? { member } : {}) });

  it('takes a set for an audience only inside it (a component, or one instance), and a set that excludes some only outside', () => {
    const canary = reload({ signer: signerOf(kp), audience: ['gateway-canary', 'gateway/gw-7'] });
    expect(canary.payload).toMatchObject({ schemaVersion: 4, audience: ['gateway-canary', 'gateway/gw-7'] });
    expect(filter({ component: 'gateway-canary', instance: 'x' }).check(canary)).toMatchObject({ accept: true });
    expect(filter({ component: 'gateway', instance: 'gw-7' }).check(canary)).toMatchObject({ accept: true });
    expect(filter({ component: 'gateway', instance: 'gw-8' }).check(canary)).toMatchObject({ accept: false, reason: 'not for us' });
    // A subscriber that does not say who it is is in no canary.
    expect(filter().check(canary)).toMatchObject({ accept: false, reason: 'not for us' });
    const others = reload({ signer: signerOf(kp), excludes: ['gateway-canary'] });
    expect(filter({ component: 'gateway-canary', instance: 'x' }).check(others)).toMatchObject({ accept: false, reason: 'not for us' });
    expect(filter({ component: 'gateway', instance: 'x' }).check(others)).toMatchObject({ accept: true });
    expect(filter().check(others)).toMatchObject({ accept: true });
  });

  it('signs a set with an audience under v4: a verifier that knows only v3 refuses it, and the audience cannot be changed or dropped', () => {
    const canary = reload({ signer: signerOf(kp), audience: ['gateway-canary'] });
    const signed = new TextDecoder().decode(signedBytes(canary));
    expect(signed.startsWith('nachos-sentinel reload v4\n')).toBe(true);
    // What a v3 receiver checks: the v3 prefix over the same message. It fails.
    const v3 = new TextEncoder().encode(`nachos-sentinel reload v3\n${signed.slice('nachos-sentinel reload v4\n'.length)}`);
    const sig = Buffer.from(canary.payload.signature?.sig ?? '', 'base64url');
    expect(fromSeed(kp.getSeed()).verify(v3, sig)).toBe(false);
    expect(fromSeed(kp.getSeed()).verify(signedBytes(canary), sig)).toBe(true);
    const widened = structuredClone(canary);
    widened.payload.audience = ['gateway-canary', 'gateway'];
    expect(filter({ component: 'gateway' }).check(widened)).toMatchObject({ accept: false, reason: 'bad signature' });
    const dropped = structuredClone(canary) as unknown as { payload: Record<string, unknown> };
    delete dropped.payload.audience;
    dropped.payload.schemaVersion = 3;
    expect(filter({ component: 'gateway' }).check(dropped)).toMatchObject({ accept: false, reason: 'bad signature' });
    // An audience with schemaVersion 3, or 4 with none, or both lists: malformed, whoever signed it.
    const mixed = reload({ signer: signerOf(kp), audience: ['a'] }) as unknown as { payload: Record<string, unknown> };
    mixed.payload.excludes = ['b'];
    expect(filter({ component: 'a' }).check(mixed)).toMatchObject({ accept: false });
    const unsigned = new ReloadFilter({ now });
    const v3WithAudience = reload({}) as unknown as { payload: Record<string, unknown> };
    v3WithAudience.payload.audience = ['gateway'];
    expect(unsigned.check(v3WithAudience)).toMatchObject({ accept: false, reason: 'malformed' });
    const v4Without = reload({}) as unknown as { payload: Record<string, unknown> };
    v4Without.payload.schemaVersion = 4;
    expect(unsigned.check(v4Without)).toMatchObject({ accept: false, reason: 'malformed' });
  });

  it('never moves the replay mark for a set that is not for us', () => {
    const f = filter({ component: 'gateway' });
    const canary = reload({ signer: signerOf(kp), audience: ['gateway-canary'], issuedAt: Date.parse('2026-12-01T10:00:00.500Z') });
    expect(f.check(canary)).toMatchObject({ reason: 'not for us' });
    // The set everyone keeps, issued before the canary's: still taken.
    const older = reload({ signer: signerOf(kp), issuedAt: Date.parse('2026-12-01T10:00:00.000Z') });
    expect(f.accept(older)).toMatchObject({ accept: true });
  });
});

describe('canonical JSON (RFC 8785)', () => {
  it('gives the RFC\'s own example byte for byte', () => {
    // RFC 8785, section 3.2.4.
    const input = JSON.parse(
      '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}',
    ) as unknown;
    expect(canonicalJson(input)).toBe('{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}');
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 0, y: undefined }], c: 'x' } })).toBe('{"a":{"c":"x","d":[1,{"z":0}]},"b":1}');
  });
});

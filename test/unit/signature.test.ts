import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createAccount, createUser } from '@nats-io/nkeys';
import { describe, expect, it } from 'vitest';
import { makeEnvelope, type Envelope } from '../../src/protocol/envelope.js';
import { contentBytes, fileContent, reloadBody, reloadHead, type PolicyReloadPayload } from '../../src/policy/announcements.js';
import { canonicalJson } from '../../src/policy/canonical-json.js';
import { buildSnapshot } from '../../src/policy/snapshot.js';
import { ReloadSigner, signedBytes } from '../../src/policy/signature.js';
import { ReloadFilter } from '../../src/subscriber/reload-filter.js';
import { verifyReload } from '../../src/subscriber/verify-reload.js';
import { SUBJECTS } from '../../src/protocol/topics.js';

const seedOf = (kp: { getSeed(): Uint8Array }) => new TextDecoder().decode(kp.getSeed());
const fixtures = path.resolve(import.meta.dirname, '../fixtures/nachos-style');

/** A real reload message, as the announcer builds it, from the Nachos-style fixture (skip-file: with skipped files and warnings too). */
function reload(options: { signer?: ReloadSigner; issuedAt?: number; sequence?: number } = {}): Envelope<PolicyReloadPayload> {
  const sources = readdirSync(fixtures)
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => ({ path: f, kind: 'policy' as const, content: readFileSync(path.join(fixtures, f)) }));
  sources.push({ path: 'bytes.yaml', kind: 'policy', content: Buffer.from('version: "1.0"\nrules: []\n# \xe9\n', 'latin1') });
  const built = buildSnapshot(sources, [], { allowEmpty: false, invalidFiles: 'skip-file' });
  if (!built.ok) throw new Error('fixture rejected');
  const announced = { snapshot: built.snapshot, previous: undefined, sequence: options.sequence ?? 3 };
  const issuedAt = options.issuedAt ?? Date.parse('2026-12-01T10:00:00.000Z');
  const payload = { ...reloadHead(announced, 'change', issuedAt), ...reloadBody(announced) };
  const message = makeEnvelope(SUBJECTS.policyReload, 'sentinel', payload, { now: issuedAt });
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
  const signer = new ReloadSigner(seedOf(key));
  const publicKey = key.getPublicKey();

  it('verifies a real reload signed by the trusted key; the bytes are the prefix and the canonical message', () => {
    const message = reload({ signer });
    expect(signer.publicKey).toBe(publicKey);
    expect(message.payload.signature).toMatchObject({ alg: 'ed25519-nkey', key: publicKey, sig: expect.stringMatching(/^[A-Za-z0-9_-]{86}$/) });
    expect(verifyReload(message, publicKey)).toEqual({ ok: true });
    const text = new TextDecoder().decode(signedBytes(message));
    const { signature: _s, ...unsigned } = message.payload;
    expect(text).toBe(`nachos-sentinel reload v2\n${canonicalJson({ ...message, payload: unsigned })}`);
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
    for (const needed of [['payload', 'revision'], ['payload', 'reason'], ['payload', 'sequence'], ['payload', 'issuedAt'], ['id'], ['timestamp']]) {
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
    const other = new ReloadSigner(seedOf(createUser()));
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
    expect(() => new ReloadSigner('SUAnotaseedatall')).toThrow(/^not an NKey seed/);
    try {
      new ReloadSigner('SUAnotaseedatall');
    } catch (err) {
      expect((err as Error).message).not.toContain('SUAnotaseedatall');
    }
  });
});

describe('ReloadFilter', () => {
  const key = createAccount();
  const signer = new ReloadSigner(seedOf(key));
  const publicKey = key.getPublicKey();
  const at = (iso: string) => Date.parse(iso);

  it('drops duplicates by revision and refuses what the key did not sign', () => {
    const filter = new ReloadFilter({ publicKey });
    const signed = reload({ signer });
    expect(filter.accept(signed)).toMatchObject({ accept: true });
    expect(filter.accept(reload({ signer, issuedAt: at('2026-12-01T10:00:01Z') }))).toEqual({ accept: false, reason: 'duplicate' });
    expect(filter.accept(reload())).toEqual({ accept: false, reason: 'unsigned' });
    expect(new ReloadFilter().accept(reload().payload)).toMatchObject({ accept: true });
  });

  it('refuses a signed reload older than the newest one it accepted from that key: no rollback by replay', () => {
    const filter = new ReloadFilter({ publicKey });
    const old = reload({ signer, issuedAt: at('2026-12-01T09:00:00Z'), sequence: 1 });
    // A newer set, announced later (its own files: a different revision).
    const newer = reload({ signer, issuedAt: at('2026-12-01T10:00:00Z'), sequence: 2 });
    newer.payload.files = [];
    newer.payload.revision = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
    newer.payload.policies = [];
    delete newer.payload.signature;
    signer.sign(newer);
    expect(filter.accept(old)).toMatchObject({ accept: true });
    expect(filter.accept(newer)).toMatchObject({ accept: true });
    expect(filter.accept(old)).toEqual({ accept: false, reason: 'replayed' });
    // Order is the signed time, not the sequence, which restarts with the sentinel.
    const afterRestart = reload({ signer, issuedAt: at('2026-12-01T11:00:00Z'), sequence: 1 });
    expect(filter.accept(afterRestart)).toMatchObject({ accept: true });
  });

  it('with maxAgeMs, refuses a reload issued longer ago than that', () => {
    const now = at('2026-12-01T10:10:00Z');
    const filter = new ReloadFilter({ publicKey, maxAgeMs: 5 * 60_000, now: () => now });
    expect(filter.accept(reload({ signer, issuedAt: at('2026-12-01T10:00:00Z') }))).toEqual({ accept: false, reason: 'expired' });
    expect(filter.accept(reload({ signer, issuedAt: at('2026-12-01T10:09:00Z') }))).toMatchObject({ accept: true });
  });

  it('checks unsigned messages for consistency too: files that do not hash to what they claim are refused', () => {
    const message = reload();
    const file = message.payload.files?.find((f) => f.content !== undefined && f.encoding === undefined);
    if (file) file.content += '\n# changed';
    expect(new ReloadFilter().accept(message)).toEqual({ accept: false, reason: 'content mismatch' });
    const other = reload();
    other.payload.revision = '0'.repeat(64);
    expect(new ReloadFilter().accept(other)).toEqual({ accept: false, reason: 'revision mismatch' });
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

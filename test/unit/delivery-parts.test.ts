import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createUser } from '@nats-io/nkeys';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigMapDir, ForeignFilesError, type DeliverySet } from '../../src/deliver/configmap-dir.js';
import { HeartbeatTrust, signHeartbeat, VERIFY_PER_SECOND } from '../../src/health/heartbeat-trust.js';
import { makeEnvelope } from '../../src/protocol/envelope.js';
import { SUBJECTS } from '../../src/protocol/topics.js';
import { PermanentRefusal, ReloadApplier, type WholeReload } from '../../src/subscriber/reload-applier.js';
import { ReloadFilter } from '../../src/subscriber/reload-filter.js';
import { SigningKey } from '../../src/trust/ed25519.js';
import { policyYaml } from '../helpers/policy-files.js';
import { makeReload } from '../helpers/reloads.js';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/until.js';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function fresh(): string {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  return path.join(dir, 'delivered');
}

function set(revision: string, files: Record<string, string>): DeliverySet {
  return {
    revision,
    issuedAt: '2026-12-05T10:00:00.000Z',
    expiresAt: '2026-12-06T10:00:00.000Z',
    files: Object.entries(files).map(([p, text]) => ({ path: p, sha256: sha256(text), bytes: Buffer.from(text) })),
  };
}

/** What a reader finds: name -> text, through the links. */
function read(dir: string): Record<string, string> {
  return Object.fromEntries(
    readdirSync(dir)
      .filter((n) => !n.startsWith('.') && n !== 'lost+found')
      .map((n) => [n, readFileSync(path.join(dir, n), 'utf8')]),
  );
}

describe('the delivery directory after a kill, at each step of a write', () => {
  const one = { 'a.yaml': 'a-1', 'b.yaml': 'b-1' };
  const two = { 'a.yaml': 'a-2', 'c.yaml': 'c-2' };

  it('a new version written but ..data not re-pointed yet: the old set, whole; the orphan removed', async () => {
    const dir = fresh();
    await new ConfigMapDir(dir).write(set('r1', one));
    // The kill: a version directory, half written, that nothing points to.
    mkdirSync(path.join(dir, '..2026_12_05_10_00_01.123.AbCdEf'));
    writeFileSync(path.join(dir, '..2026_12_05_10_00_01.123.AbCdEf', 'a.yaml'), 'a-');
    symlinkSync('..2026_12_05_10_00_01.123.AbCdEf', path.join(dir, '..data_tmp'));
    const opened = await new ConfigMapDir(dir).open();
    expect(opened.delivered?.revision).toBe('r1');
    expect(read(dir)).toEqual(one);
    expect(readdirSync(dir).filter((n) => n.startsWith('..')).sort()).toEqual(['..data', readlinkSync(path.join(dir, '..data'))].sort());
    expect(opened.repaired).toEqual(expect.arrayContaining(['removed ..data_tmp', 'removed version ..2026_12_05_10_00_01.123.AbCdEf']));
  });

  it('..data re-pointed, links half done (one new file unlinked, one removed file still linked, a temporary link): the new set, whole', async () => {
    const dir = fresh();
    const cm = new ConfigMapDir(dir);
    await cm.write(set('r1', one));
    const first = readlinkSync(path.join(dir, '..data'));
    await cm.write(set('r2', two));
    // Back to the moment after the rename of ..data: c.yaml's link not made yet, b.yaml's not removed, the old version still there.
    unlinkSync(path.join(dir, 'c.yaml'));
    symlinkSync('..data/b.yaml', path.join(dir, 'b.yaml'));
    symlinkSync('..data/c.yaml', path.join(dir, '..link_0123456789abcdef'));
    mkdirSync(path.join(dir, first));
    const opened = await new ConfigMapDir(dir).open();
    expect(opened.delivered?.revision).toBe('r2');
    expect(read(dir)).toEqual(two);
    expect(opened.repaired).toEqual(expect.arrayContaining(['removed link b.yaml', 'made link c.yaml', 'removed ..link_0123456789abcdef', `removed version ${first}`]));
    // Every name is a link into ..data; one version left.
    for (const n of Object.keys(two)) expect(readlinkSync(path.join(dir, n))).toBe(`..data/${n}`);
    expect(readdirSync(dir).filter((n) => n.startsWith('..') && n !== '..data')).toHaveLength(1);
  });

  it('starts the replay check from the record even when the bytes were changed, and names nothing delivered then', async () => {
    const dir = fresh();
    await new ConfigMapDir(dir).write(set('r1', one));
    const version = readlinkSync(path.join(dir, '..data'));
    writeFileSync(path.join(dir, version, 'a.yaml'), 'tampered');
    const opened = await new ConfigMapDir(dir).open();
    expect(opened.delivered).toBeUndefined();
    expect(opened.record).toMatchObject({ revision: 'r1', issuedAt: '2026-12-05T10:00:00.000Z' });
  });

  it('refuses a directory holding anything it did not write, moves it aside with take-over, and never writes over a name someone else holds', async () => {
    const dir = fresh();
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'mine.yml'), 'theirs');
    mkdirSync(path.join(dir, '..backup'));
    mkdirSync(path.join(dir, 'lost+found'));
    await expect(new ConfigMapDir(dir).open()).rejects.toBeInstanceOf(ForeignFilesError);
    await expect(new ConfigMapDir(dir).open()).rejects.toThrow(/\(\.\.backup, mine\.yml\)/);
    const cm = new ConfigMapDir(dir, { takeOver: true });
    const opened = await cm.open();
    expect(opened.moved).toEqual(['..backup', 'mine.yml']);
    expect(readFileSync(path.join(opened.movedTo as string, 'mine.yml'), 'utf8')).toBe('theirs');
    expect(existsSync(path.join(dir, 'lost+found'))).toBe(true);
    await cm.write(set('r1', one));
    writeFileSync(path.join(dir, 'c.yaml'), 'someone else');
    await expect(cm.write(set('r2', two))).rejects.toThrow(/c\.yaml is not ours/);
    expect(readFileSync(path.join(dir, 'c.yaml'), 'utf8')).toBe('someone else');
    expect(read(dir)).toEqual({ ...one, 'c.yaml': 'someone else' });
    // Nothing of the refused version is left.
    expect(readdirSync(dir).filter((n) => /^\.\.\d/.test(n))).toHaveLength(1);
    rmSync(path.join(dir, 'c.yaml'));
    await cm.write(set('r2', two));
    expect(read(dir)).toEqual(two);
    expect(await cm.foreign()).toEqual([]);
  });

  it('refuses for good a set no directory can hold (two files of one name, a name over 255 bytes)', async () => {
    const cm = new ConfigMapDir(fresh());
    const twice = set('r1', one);
    twice.files.push(twice.files[0] as DeliverySet['files'][number]);
    await expect(cm.write(twice)).rejects.toBeInstanceOf(PermanentRefusal);
    await expect(cm.write(set('r2', { [`${'é'.repeat(128)}.yaml`]: 'x' }))).rejects.toBeInstanceOf(PermanentRefusal);
    // 250 bytes is a name like any other.
    await cm.write(set('r3', { [`${'n'.repeat(245)}.yaml`]: 'x' }));
  });

  it('moves a file renamed away by a reader? no: only its own links are ever removed', async () => {
    const dir = fresh();
    const cm = new ConfigMapDir(dir);
    await cm.write(set('r1', one));
    renameSync(path.join(dir, 'b.yaml'), path.join(dir, 'b-link-kept.yaml'));
    await cm.write(set('r2', two));
    // A link of ours under another name still points into ..data: ours, and gone with the set that had it.
    expect(existsSync(path.join(dir, 'b-link-kept.yaml'))).toBe(false);
    expect(read(dir)).toEqual(two);
  });
});

describe('the applier', () => {
  const now = Date.now();
  const reload = (i: number, files: Record<string, string> = { 'a.yaml': policyYaml(`v${i}`) }) => makeReload({ files, issuedAt: now - 10_000 + i * 10 }).message;

  it('applies in the order issued, drops what a newer set supersedes, and never goes back', async () => {
    const applied: string[] = [];
    let release: (() => void) | undefined;
    const applier = new ReloadApplier({
      filter: new ReloadFilter(),
      request: () => Promise.reject(new Error('no transfer here')),
      apply: async (r: WholeReload) => {
        applied.push(r.revision);
        if (applied.length === 1) await new Promise<void>((resolve) => (release = resolve));
      },
    });
    const [r1, r2, r3, r4] = [reload(1), reload(2), reload(3), reload(4)];
    expect(applier.receive(r1)).toBe('queued');
    await until(() => release, 1000, 'the first apply under way');
    // While r1 is being applied: r3, then r2 (older than r3: superseded), then r4 (newest: replaces r3).
    expect(applier.receive(r3)).toBe('queued');
    expect(applier.receive(r2)).toBe('superseded');
    expect(applier.receive(r4)).toBe('queued');
    release?.();
    await until(() => applied.length === 2, 1000, 'the second apply');
    expect(applied).toEqual([r1?.payload.revision, r4?.payload.revision]);
    expect(applier.receive(r3)).toBe('replayed');
    expect(applier.receive(r4)).toBe('duplicate');
    applier.close();
  });

  it('tries a failed set again until it is applied; refuses for good what can never be, and goes on with newer sets', async () => {
    let failures = 2;
    const applied: string[] = [];
    const events: string[] = [];
    const applier = new ReloadApplier({
      filter: new ReloadFilter(),
      request: () => Promise.reject(new Error('unused')),
      retryFirstMs: 20,
      apply: async (r) => {
        if (r.files.some((f) => f.path === 'never.yaml')) throw new PermanentRefusal('unwritable', 'never');
        if (failures-- > 0) throw new Error('disk full');
        applied.push(r.revision);
      },
      onEvent: (e) => events.push(e.type),
    });
    const r1 = reload(1);
    applier.receive(r1);
    await until(() => applied.length === 1, 2000, 'applied after two failures');
    expect(events).toEqual(['failed', 'failed', 'applied']);
    const never = reload(2, { 'never.yaml': policyYaml('n1') });
    applier.receive(never);
    await until(() => events.includes('refused'), 1000, 'the refusal');
    expect(applier.receive(never)).toBe('refused before');
    const r3 = reload(3);
    applier.receive(r3);
    await until(() => applied.length === 2, 1000, 'the newer set');
    expect(applied).toEqual([r1.payload.revision, r3.payload.revision]);
    applier.close();
  });
});

describe('heartbeat trust', () => {
  const kp = createUser();
  const key = new SigningKey(new TextDecoder().decode(kp.getSeed()));
  const beat = (at: number, instance = 'gw-1') =>
    JSON.parse(JSON.stringify(signHeartbeat(makeEnvelope(SUBJECTS.health, 'gateway', { status: 'healthy', component: 'gateway', instance }, { now: at }), key)));

  it('refuses a signed beat beyond the clock skew, or not newer than the last of its instance; leaves unprotected components alone', () => {
    let wall = Date.parse('2026-12-05T10:00:00Z');
    const trust = new HeartbeatTrust({ trust: { gateway: [kp.getPublicKey()] }, maxClockSkewMs: 60_000, wallNow: () => wall, now: () => 0 });
    expect(trust.judge(beat(wall))).toBe('ok');
    expect(trust.judge(beat(wall))).toBe('replayed');
    expect(trust.judge(beat(wall - 1000))).toBe('replayed');
    expect(trust.judge(beat(wall + 10))).toBe('ok');
    expect(trust.judge(beat(wall - 120_000, 'gw-2'))).toBe('stale');
    expect(trust.judge(beat(wall + 120_000, 'gw-2'))).toBe('stale');
    wall += 1000;
    expect(trust.judge(beat(wall, 'gw-2'))).toBe('ok');
    expect(trust.judge(makeEnvelope(SUBJECTS.health, 'llm', { status: 'healthy', component: 'llm' }))).toBe('unprotected');
    expect(trust.judge(makeEnvelope(SUBJECTS.health, 'gateway', { status: 'healthy', component: 'gateway' }))).toBe('unsigned');
  });

  it('checks at most so many signatures a second for one component: past it, beats wait, unchecked', () => {
    let mono = 0;
    const wall = Date.parse('2026-12-05T10:00:00Z');
    const trust = new HeartbeatTrust({ trust: { gateway: [kp.getPublicKey()] }, maxClockSkewMs: 60_000, wallNow: () => wall, now: () => mono });
    const forged = beat(wall, 'x');
    forged.payload.status = 'unhealthy';
    let busy = 0;
    for (let i = 0; i < 2 * VERIFY_PER_SECOND + 100; i++) if (trust.judge(forged) === 'busy') busy++;
    expect(busy).toBe(100);
    mono += 1000;
    expect(trust.judge(beat(wall, 'gw-9'))).toBe('ok');
  });
});

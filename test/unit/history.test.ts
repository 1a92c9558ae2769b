import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { acceptedEntry } from '../helpers/history-entries.js';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { diffRules, parseReference, ruleIndex, type NewEntry } from '../../src/history/entry.js';
import { LocalHistoryStore } from '../../src/history/local-store.js';
import { rebuildSnapshot } from '../../src/history/rebuild.js';
import { newestInForce, resolveReference } from '../../src/history/store.js';
import { sha256Hex } from '../../src/policy/revision.js';
import { buildSnapshot, type Snapshot } from '../../src/policy/snapshot.js';
import { policyText } from '../helpers/policy-files.js';
import { tempDir } from '../helpers/temp-dir.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function stateDir(): string {
  const { dir, cleanup } = tempDir('history-');
  cleanups.push(cleanup);
  return path.join(dir, 'state');
}

function snapshotOf(files: Record<string, string>): Snapshot {
  const built = buildSnapshot(
    Object.entries(files).map(([p, text]) => ({ path: p, kind: 'policy' as const, content: Buffer.from(text) })),
    [],
    { allowEmpty: false },
  );
  if (!built.ok) throw new Error('invalid test set');
  return built.snapshot;
}

function entryOf(snapshot: Snapshot, previous: Snapshot | undefined, key = `accepted:${snapshot.revision}`): { entry: NewEntry; contents: Map<string, Buffer> } {
  return acceptedEntry(snapshot, previous, { at: Date.UTC(2026, 11, 5), key });
}

describe('history entries', () => {
  it('says which files and which rules were added, changed and removed', () => {
    const before = snapshotOf({ 'a.toml': policyText('a1', 'a2'), 'b.toml': policyText('b1') });
    const after = snapshotOf({ 'a.toml': policyText('a1', 'a3'), 'c.toml': policyText('c1') });
    const { entry } = entryOf(after, before);
    expect(entry.changed).toEqual({ added: ['c.toml'], modified: ['a.toml'], removed: ['b.toml'] });
    expect(entry.rules).toEqual({ added: ['a3', 'c1'], removed: ['a2', 'b1'], changed: [] });
    expect(entry.previous).toBe(before.revision);
    // Same id, other content: changed.
    const edited = snapshotOf({ 'a.toml': policyText('a1', 'a2').replace('effect = "allow"', 'effect = "deny"'), 'b.toml': policyText('b1') });
    expect(diffRules(ruleIndex(before.policies), ruleIndex(edited.policies))).toEqual({ added: [], removed: [], changed: ['a1'] });
  });

  it('reads references: entry numbers, and revisions of 7 or more hex digits', () => {
    expect(parseReference('12')).toEqual({ n: 12 });
    expect(parseReference('#12')).toEqual({ n: 12 });
    expect(parseReference('3f2a9c1')).toEqual({ revision: '3f2a9c1' });
    expect(parseReference('3F2A9C1D')).toEqual({ revision: '3f2a9c1d' });
    expect(parseReference('1234567')).toEqual({ revision: '1234567' });
    expect(parseReference('abc')).toBeUndefined();
    expect(parseReference('HEAD~1')).toBeUndefined();
  });
});

describe('the local history store', () => {
  it('appends in order, stores each file once by digest, and survives a reopen', async () => {
    const dir = stateDir();
    const one = snapshotOf({ 'a.toml': policyText('a1'), 'b.toml': policyText('b1') });
    const two = snapshotOf({ 'a.toml': policyText('a1'), 'b.toml': policyText('b2') });
    const store = await LocalHistoryStore.open({ dir });
    const first = entryOf(one, undefined);
    const second = entryOf(two, one);
    expect((await store.append(first.entry, first.contents)).entry.n).toBe(1);
    expect((await store.append(second.entry, second.contents)).entry.n).toBe(2);
    // a.toml is the same in both: stored once. Three distinct files in all.
    expect(readdirSync(path.join(dir, 'blobs')).sort()).toEqual([...new Set([...one.files, ...two.files].map((f) => f.sha256))].sort());
    expect(readdirSync(path.join(dir, 'blobs'))).toHaveLength(3);
    await store.close();

    const again = await LocalHistoryStore.open({ dir });
    const listed = await again.list(10);
    expect(listed.map((e) => [e.n, e.revision])).toEqual([
      [2, two.revision],
      [1, one.revision],
    ]);
    const b = two.files.find((f) => f.path === 'b.toml');
    expect((await again.content(b?.sha256 ?? ''))?.toString()).toBe(policyText('b2'));
    await again.close();
  });

  it('appends an event once: a second append of the newest key returns the entry already there', async () => {
    const store = await LocalHistoryStore.open({ dir: stateDir() });
    const one = entryOf(snapshotOf({ 'a.toml': policyText('a1') }), undefined);
    expect((await store.append(one.entry, one.contents)).appended).toBe(true);
    const repeat = await store.append(one.entry, one.contents);
    expect(repeat).toMatchObject({ appended: false, entry: { n: 1 } });
    expect(await store.index()).toHaveLength(1);
    await store.close();
  });

  it('keeps the newest `keep` entries, and removes the files only the removed ones used', async () => {
    const dir = stateDir();
    const store = await LocalHistoryStore.open({ dir, keep: 3 });
    const shared = policyText('shared');
    let previous: Snapshot | undefined;
    for (let i = 1; i <= 6; i++) {
      const set = snapshotOf({ 'a.toml': shared, 'b.toml': policyText(`b${i}`) });
      const { entry, contents } = entryOf(set, previous);
      await store.append(entry, contents);
      previous = set;
    }
    expect((await store.index()).map((e) => e.n)).toEqual([4, 5, 6]);
    expect(readdirSync(path.join(dir, 'entries'))).toHaveLength(3);
    // The shared file and the three kept b.toml versions: 4 blobs, not 7.
    expect(readdirSync(path.join(dir, 'blobs'))).toHaveLength(4);
    expect(existsSync(path.join(dir, 'blobs', sha256Hex(shared)))).toBe(true);
    expect(existsSync(path.join(dir, 'blobs', sha256Hex(policyText('b1'))))).toBe(false);
    await store.close();
  });

  it('makes its directory private, and lets one sentinel at a time write it', async () => {
    const dir = stateDir();
    const store = await LocalHistoryStore.open({ dir });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    // Another process (this test's parent stands in for it, alive) holds the lock: refused, naming who.
    writeFileSync(path.join(dir, 'lock'), JSON.stringify({ pid: process.ppid, host: (await import('node:os')).hostname() }));
    await expect(LocalHistoryStore.open({ dir })).rejects.toThrow(new RegExp(`the state directory ${dir} is in use by process ${process.ppid}.*--state-dir`));
    // A lock left by a process that is gone is taken over.
    writeFileSync(path.join(dir, 'lock'), JSON.stringify({ pid: 2 ** 22 + 17, host: (await import('node:os')).hostname() }));
    const next = await LocalHistoryStore.open({ dir });
    expect(JSON.parse(readFileSync(path.join(dir, 'lock'), 'utf8'))).toMatchObject({ pid: process.pid });
    await next.close();
    await store.close();
  });

  it('reads beside a writer without a lock, and says plainly when there is no history', async () => {
    const dir = stateDir();
    await expect(LocalHistoryStore.open({ dir, readOnly: true })).rejects.toThrow(`no policy history in ${dir}`);
    const writer = await LocalHistoryStore.open({ dir });
    const one = entryOf(snapshotOf({ 'a.toml': policyText('a1') }), undefined);
    await writer.append(one.entry, one.contents);
    const reader = await LocalHistoryStore.open({ dir, readOnly: true });
    expect(await reader.list(5)).toHaveLength(1);
    await expect(reader.append(one.entry, one.contents)).rejects.toThrow('opened to read');
    await reader.close();
    await writer.close();
  });

  it('takes a damaged stored file as absent, so a rollback to it is refused rather than wrong', async () => {
    const dir = stateDir();
    const store = await LocalHistoryStore.open({ dir });
    const set = snapshotOf({ 'a.toml': policyText('a1') });
    const { entry, contents } = entryOf(set, undefined);
    const stored = (await store.append(entry, contents)).entry;
    const sha = set.files[0]?.sha256 as string;
    writeFileSync(path.join(dir, 'blobs', sha), policyText('evil'));
    expect(await store.content(sha)).toBeUndefined();
    const rebuilt = await rebuildSnapshot(stored, store, { allowEmpty: false });
    expect(rebuilt).toEqual({ ok: false, why: expect.stringContaining('a.toml of revision') });
    await store.close();
  });
});

describe('finding and rebuilding a recorded set', () => {
  it('resolves numbers and revision prefixes, and says why when it cannot', async () => {
    const store = await LocalHistoryStore.open({ dir: stateDir() });
    const one = snapshotOf({ 'a.toml': policyText('a1') });
    const two = snapshotOf({ 'a.toml': policyText('a2') });
    for (const [set, prev] of [[one, undefined], [two, one], [one, two]] as const) {
      const { entry, contents } = entryOf(set, prev, `accepted:${set.revision}:${prev?.revision ?? ''}`);
      await store.append(entry, contents);
    }
    expect((await resolveReference(store, '#2')).revision).toBe(two.revision);
    // A revision: its newest entry.
    expect((await resolveReference(store, one.revision.slice(0, 10))).n).toBe(3);
    await expect(resolveReference(store, '9')).rejects.toThrow('no history entry #9 in');
    await expect(resolveReference(store, 'ffffffffff')).rejects.toThrow('no revision starting ffffffffff');
    await expect(resolveReference(store, 'xyz')).rejects.toThrow('neither an entry number');
    expect(newestInForce(await store.index())?.revision).toBe(one.revision);
    await store.close();
  });

  it('rebuilds a set byte for byte, and refuses one that no longer validates under today\'s rules', async () => {
    const store = await LocalHistoryStore.open({ dir: stateDir() });
    const set = snapshotOf({ 'a.toml': policyText('a1'), 'b.toml': policyText('b1').replace('[metadata]', '[metadata]\nextra = 1') });
    const { entry, contents } = entryOf(set, undefined);
    const stored = (await store.append(entry, contents)).entry;
    const rebuilt = await rebuildSnapshot(stored, store, { allowEmpty: false });
    expect(rebuilt.ok && rebuilt.snapshot.revision).toBe(set.revision);
    expect(rebuilt.ok && [...rebuilt.snapshot.contents]).toEqual([...set.contents]);
    expect(rebuilt.ok && rebuilt.snapshot.ruleCount).toBe(2);
    // With strict keys, today, the unknown key is an error: the rollback would be refused.
    const strict = await rebuildSnapshot(stored, store, { allowEmpty: false, strictKeys: true });
    expect(strict).toEqual({ ok: false, why: expect.stringContaining('no longer validates') });
    await store.close();
  });
});

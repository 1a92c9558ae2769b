import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/errors.js';
import { compareBytes } from '../../src/policy/byte-order.js';
import { computeRevision, diffFiles, sha256Hex } from '../../src/policy/revision.js';
import { buildSnapshot, digestFiles } from '../../src/policy/snapshot.js';
import type { SourceFile } from '../../src/policy/validate.js';
import { tempDir } from '../helpers/temp-dir.js';

const VALID = (id: string) =>
  `version = "1.0"\n[[rules]]\nid = "${id}"\npriority = 1\nmatch = { resource = "tool" }\neffect = "allow"\n`;

function source(name: string, text: string, kind: SourceFile['kind'] = 'policy'): SourceFile {
  return { path: name, kind, content: Buffer.from(text) };
}

describe('byte order', () => {
  it("orders any two strings as their UTF-8 bytes do (lone surrogates as Buffer.from encodes them)", () => {
    const text = fc.oneof(fc.string({ unit: 'binary', maxLength: 12 }), fc.string({ unit: 'grapheme', maxLength: 6 }), fc.string({ maxLength: 12 }), fc.string({ unit: fc.integer({ min: 0xd7f0, max: 0xe010 }).map((c) => String.fromCharCode(c)), maxLength: 6 }));
    fc.assert(
      fc.property(text, text, (a, b) => {
        expect(Math.sign(compareBytes(a, b))).toBe(Buffer.compare(Buffer.from(a), Buffer.from(b)));
        expect(Math.sign(compareBytes(a, a + b))).toBe(Buffer.compare(Buffer.from(a), Buffer.from(a + b)));
      }),
      { numRuns: 2000 },
    );
    // Where UTF-16 order and byte order part: U+FF61 sorts before U+1F600 in bytes, after it in code units.
    expect(compareBytes('\uff61', '\u{1f600}')).toBe(-1);
    expect('\uff61' < '\u{1f600}').toBe(false);
  });
});

describe('revision', () => {
  let cleanup: (() => void) | undefined;
  afterEach(() => cleanup?.());

  it('is what sha256sum computes over the directory, so anyone can check it', () => {
    const tmp = tempDir();
    cleanup = tmp.cleanup;
    const files = { 'b.toml': VALID('b'), 'a.toml': VALID('a'), 'Z.toml': VALID('z'), 'é.toml': VALID('e') };
    for (const [name, text] of Object.entries(files)) writeFileSync(path.join(tmp.dir, name), text);
    const expected = execFileSync('sh', ['-c', 'sha256sum *.toml | LC_ALL=C sort -k2 | sha256sum'], { cwd: tmp.dir })
      .toString()
      .split(' ')[0];
    const revision = computeRevision(digestFiles(Object.entries(files).map(([n, t]) => source(n, t))));
    expect(revision).toBe(expected);
  });

  it('does not depend on the order files were read in, and changes with any byte or name', () => {
    const a = [source('a.toml', VALID('a')), source('b.toml', VALID('b'))];
    const base = computeRevision(digestFiles(a));
    expect(computeRevision(digestFiles([...a].reverse()))).toBe(base);
    expect(computeRevision(digestFiles([source('a.toml', VALID('a') + ' '), a[1] as SourceFile]))).not.toBe(base);
    expect(computeRevision(digestFiles([source('c.toml', VALID('a')), a[1] as SourceFile]))).not.toBe(base);
  });

  it('digests each file', () => {
    const [file] = digestFiles([source('a.toml', 'x = 1\n')]);
    expect(file).toEqual({ path: 'a.toml', kind: 'policy', sha256: sha256Hex('x = 1\n'), bytes: 6 });
  });
});

describe('buildSnapshot', () => {
  it('builds a snapshot of a valid set', () => {
    const result = buildSnapshot([source('a.toml', VALID('a')), source('b.toml', VALID('b'))], [], { allowEmpty: false });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.snapshot.ruleCount).toBe(2);
    expect(result.snapshot.files.map((f) => f.path)).toEqual(['a.toml', 'b.toml']);
    expect(result.snapshot.policies.map((p) => p.path)).toEqual(['a.toml', 'b.toml']);
  });

  it('rejects the whole set when one file is bad: nothing half-applied', () => {
    const result = buildSnapshot([source('a.toml', VALID('a')), source('b.toml', 'broken = ')], [], { allowEmpty: false });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.rejection.problems.map((p) => p.file)).toEqual(['b.toml']);
    expect(result.rejection.files).toHaveLength(2);
  });

  it('rejects an empty set unless allowed', () => {
    const empty = buildSnapshot([], [], { allowEmpty: false });
    expect(empty.ok).toBe(false);
    if (!empty.ok) expect(empty.rejection.problems[0]?.code).toBe(ERROR_CODES.POLICY_EMPTY);
    expect(buildSnapshot([], [], { allowEmpty: true }).ok).toBe(true);
    // Other config files alone do not make a policy set.
    expect(buildSnapshot([source('../n.toml', 'a = 1', 'config')], [], { allowEmpty: false }).ok).toBe(false);
  });

  it('rejects when a file could not be read, even if the rest is valid', () => {
    const problem = { code: ERROR_CODES.POLICY_READ, file: 'c.toml', message: 'cannot be read: permission denied' };
    const result = buildSnapshot([source('a.toml', VALID('a'))], [problem], { allowEmpty: false });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.rejection.problems).toEqual([problem]);
  });
});

describe('buildSnapshot with invalid_files = skip-file', () => {
  // The mechanics of skip-file, on TOML files: a bus consumer reads them all.
  const skip = { allowEmpty: false, invalidFiles: 'skip-file', consumer: 'bus' } as const;

  it('leaves out each invalid or unreadable file, with its problems, and takes the rest, its revision over what it kept', () => {
    const unreadable = { code: ERROR_CODES.POLICY_READ, file: 'c.toml', message: 'cannot be read: permission denied' };
    const sources = [source('a.toml', VALID('a')), source('b.toml', 'broken = '), source('d.toml', `${VALID('d')}efect = "x"\n`)];
    const result = buildSnapshot(sources, [unreadable], skip);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const { snapshot } = result;
    expect(snapshot.files.map((f) => f.path)).toEqual(['a.toml', 'd.toml']);
    expect(snapshot.revision).toBe(computeRevision(digestFiles([sources[0] as SourceFile, sources[2] as SourceFile])));
    expect(snapshot.skipped.map((s) => [s.path, s.problems.map((p) => p.code)])).toEqual([
      ['b.toml', [ERROR_CODES.POLICY_SYNTAX]],
      ['c.toml', [ERROR_CODES.POLICY_READ]],
    ]);
    expect(snapshot.warnings).toMatchObject([{ file: 'd.toml', code: ERROR_CODES.POLICY_UNKNOWN_KEY }]);
    expect([...snapshot.contents.keys()]).toEqual(['a.toml', 'd.toml']);
    // reject-set, on the same files, refuses the whole of it.
    expect(buildSnapshot(sources, [unreadable], { allowEmpty: false }).ok).toBe(false);
  });

  it('still refuses a set with nothing valid left, or a missing directory', () => {
    const none = buildSnapshot([source('b.toml', 'broken = ')], [], skip);
    expect(none.ok).toBe(false);
    if (!none.ok) expect(none.rejection.problems.at(-1)).toMatchObject({ code: ERROR_CODES.POLICY_EMPTY, message: expect.stringContaining('--allow-empty') });
    const missing = { code: ERROR_CODES.POLICY_DIR_MISSING, file: '', message: 'policy directory /x does not exist' };
    expect(buildSnapshot([], [missing], skip).ok).toBe(false);
  });
});

describe('diffFiles', () => {
  it('lists added, modified and removed paths', () => {
    const before = digestFiles([source('a.toml', '1'), source('b.toml', '2'), source('c.toml', '3')]);
    const after = digestFiles([source('a.toml', '1'), source('b.toml', '2!'), source('d.toml', '4')]);
    expect(diffFiles(before, after)).toEqual({ added: ['d.toml'], modified: ['b.toml'], removed: ['c.toml'] });
    expect(diffFiles([], after).added).toEqual(['a.toml', 'b.toml', 'd.toml']);
  });
});

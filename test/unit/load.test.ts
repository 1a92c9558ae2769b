import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ERROR_CODES } from '../../src/errors.js';
import { isPolicyFileName, loadFiles } from '../../src/policy/load.js';
import { tempDir } from '../helpers/temp-dir.js';

/** Every byte the loader reads goes through node:fs `read`: counted here, so a test can say how much of a file was read. */
const reads = vi.hoisted(() => ({ bytes: 0 }));
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const read = (...args: unknown[]) => {
    const done = args.pop() as (err: NodeJS.ErrnoException | null, n: number, buffer: unknown) => void;
    return (fs.read as (...a: unknown[]) => void)(...args, (err: NodeJS.ErrnoException | null, n: number, buffer: unknown) => {
      if (!err) reads.bytes += n;
      done(err, n, buffer);
    });
  };
  return { ...fs, default: { ...fs, read }, read };
});

describe('isPolicyFileName', () => {
  it.each(['strict.toml', 'a-b_c.toml', '00-base.toml', 'strict.yaml', 'custom.yml'])('takes %s', (name) => expect(isPolicyFileName(name)).toBe(true));
  it.each([
    '.hidden.toml',
    '..data',
    '..2026_11_27_10_00_00.123',
    '.strict.toml.swp',
    'strict.toml~',
    '#strict.toml#',
    '.#strict.toml',
    'strict.toml.tmp',
    'strict.toml.12345',
    'strict.yaml.bak',
    '.strict.yaml.swp',
    'README.md',
    '.toml',
  ])('ignores %s', (name) => expect(isPolicyFileName(name)).toBe(false));
});

describe('loadFiles', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());
  const load = (extra: string[] = [], maxFileBytes = 1024) => loadFiles({ dir: path.join(dir, 'p'), extraFiles: extra, maxFileBytes });

  it('reads every policy file directly in the directory, through symlinks, and the extra files', async () => {
    mkdirSync(path.join(dir, 'p', 'sub'), { recursive: true });
    writeFileSync(path.join(dir, 'p', 'a.toml'), 'a = 1');
    writeFileSync(path.join(dir, 'p', '.hidden.toml'), 'h = 1');
    writeFileSync(path.join(dir, 'p', 'sub', 'nested.toml'), 'n = 1');
    writeFileSync(path.join(dir, 'p', 'sub', 'target.toml'), 't = 1');
    symlinkSync('sub/target.toml', path.join(dir, 'p', 'linked.toml'));
    writeFileSync(path.join(dir, 'nachos.toml'), 'x = 1');
    const result = await load([path.join(dir, 'nachos.toml')]);
    expect(result.problems).toEqual([]);
    expect(result.sources.map((s) => [s.path, s.kind, s.content.toString()]).sort()).toEqual([
      ['../nachos.toml', 'config', 'x = 1'],
      ['a.toml', 'policy', 'a = 1'],
      ['linked.toml', 'policy', 't = 1'],
    ]);
  });

  it('refuses symlinks that lead outside the directory, devices and link loops', async () => {
    mkdirSync(path.join(dir, 'p'));
    writeFileSync(path.join(dir, 'secret.toml'), 'password = "x"');
    symlinkSync(path.join(dir, 'secret.toml'), path.join(dir, 'p', 'outside.toml'));
    symlinkSync('/dev/zero', path.join(dir, 'p', 'zero.toml'));
    execFileSync('mknod', [path.join(dir, 'p', 'null.toml'), 'c', '1', '3']);
    symlinkSync('loop-b.toml', path.join(dir, 'p', 'loop-a.toml'));
    symlinkSync('loop-a.toml', path.join(dir, 'p', 'loop-b.toml'));
    mkdirSync(path.join(dir, 'p', 'sub'));
    writeFileSync(path.join(dir, 'p', 'sub', 'in.toml'), 'k = 1');
    symlinkSync('sub/in.toml', path.join(dir, 'p', 'in.toml'));
    const result = await load();
    expect(result.sources.map((s) => s.path)).toEqual(['in.toml']);
    expect(result.problems.map((p) => [p.file, p.code]).sort()).toEqual([
      ['loop-a.toml', ERROR_CODES.POLICY_READ],
      ['loop-b.toml', ERROR_CODES.POLICY_READ],
      ['null.toml', ERROR_CODES.POLICY_NOT_FILE],
      ['outside.toml', ERROR_CODES.POLICY_OUTSIDE_DIR],
      ['zero.toml', ERROR_CODES.POLICY_OUTSIDE_DIR],
    ]);
    expect(result.problems.find((p) => p.file === 'outside.toml')?.message).toBe(
      `is a symlink to ${path.join(dir, 'secret.toml')}, outside the policy directory; only links inside it are followed`,
    );
    expect(result.problems.find((p) => p.file === 'null.toml')?.message).toBe('is not a regular file (a device)');
    expect(result.problems.find((p) => p.file === 'loop-a.toml')?.message).toContain('too many levels of symbolic links');
  });

  it('reads a Kubernetes ConfigMap volume through ..data, where the set is whole, not through its top-level links', async () => {
    const p = path.join(dir, 'p');
    mkdirSync(p);
    mkdirSync(path.join(p, '..2026_11_27'));
    writeFileSync(path.join(p, '..2026_11_27', 'k8s.toml'), 'k = 1');
    writeFileSync(path.join(p, '..2026_11_27', 'new.toml'), 'n = 1');
    symlinkSync('..2026_11_27', path.join(p, '..data'));
    // Mid-update, as kubelet leaves it for a moment: new.toml's link not made yet, gone.toml's not yet removed.
    symlinkSync('..data/k8s.toml', path.join(p, 'k8s.toml'));
    symlinkSync('..data/gone.toml', path.join(p, 'gone.toml'));
    const result = await load();
    expect(result.sources.map((s) => s.path).sort()).toEqual(['k8s.toml', 'new.toml']);
    expect(result.problems).toEqual([]);
    // A ..data that leads out of the directory is not followed: the top level is read.
    rmSync(path.join(p, '..data'));
    symlinkSync(dir, path.join(p, '..data'));
    expect((await load()).sources.map((s) => s.path)).toEqual([]);
  });

  it('reports a missing directory', async () => {
    const result = await load();
    expect(result.dirMissing).toBe(true);
    expect(result.problems[0]?.code).toBe(ERROR_CODES.POLICY_DIR_MISSING);
  });

  it('refuses files over the cap without reading them whole', async () => {
    mkdirSync(path.join(dir, 'p'));
    writeFileSync(path.join(dir, 'p', 'big.toml'), 'x'.repeat(5000));
    writeFileSync(path.join(dir, 'p', 'small.toml'), 'i = 1');
    reads.bytes = 0;
    const result = await load([], 1024);
    expect(result.sources.map((s) => s.path)).toEqual(['small.toml']);
    expect(result.problems).toEqual([{ code: ERROR_CODES.POLICY_TOO_LARGE, file: 'big.toml', message: expect.stringContaining('1024 bytes (5000 bytes)') }]);
    // Of the 5,000 bytes, at most the cap and one byte more (which tells a file that grew while read) were read;
    // the small file's five were read whole, so the count sees the reads that happen.
    expect(reads.bytes).toBeGreaterThanOrEqual(5);
    expect(reads.bytes).toBeLessThanOrEqual(5 + 1024 + 1);
  });

  it('refuses a FIFO without blocking on it, and a directory named like a policy', async () => {
    mkdirSync(path.join(dir, 'p', 'dir.toml'), { recursive: true });
    execFileSync('mkfifo', [path.join(dir, 'p', 'pipe.toml')]);
    const result = await load();
    expect(result.problems.map((p) => [p.file, p.code, p.message]).sort()).toEqual([
      ['dir.toml', ERROR_CODES.POLICY_NOT_FILE, 'is not a regular file (a directory)'],
      ['pipe.toml', ERROR_CODES.POLICY_NOT_FILE, 'is not a regular file (a FIFO)'],
    ]);
  });

  it('reports a dangling symlink and a missing extra file as unreadable', async () => {
    mkdirSync(path.join(dir, 'p'));
    symlinkSync(path.join(dir, 'gone.toml'), path.join(dir, 'p', 'dangling.toml'));
    const result = await load([path.join(dir, 'missing.toml')]);
    expect(result.problems.map((p) => [p.file, p.code]).sort()).toEqual([
      ['../missing.toml', ERROR_CODES.POLICY_READ],
      ['dangling.toml', ERROR_CODES.POLICY_READ],
    ]);
  });

  it('reads 1,000 files without running out of descriptors', async () => {
    mkdirSync(path.join(dir, 'p'));
    for (let i = 0; i < 1000; i++) writeFileSync(path.join(dir, 'p', `f${i}.toml`), `i = ${i}`);
    const result = await load();
    expect(result.problems).toEqual([]);
    expect(result.sources).toHaveLength(1000);
  });
});

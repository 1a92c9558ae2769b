import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, renameSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { describe, expect } from 'vitest';
import { sha256Hex } from '../../src/policy/revision.js';
import { SUBJECTS } from '../../src/protocol/topics.js';
import { it } from '../helpers/fixtures.js';
import { prng } from '../helpers/prng.js';
import { shellRevision } from '../helpers/revision.js';
import { until } from '../helpers/until.js';

const EDITS = Number(process.env.TORTURE_EDITS ?? 5000);
const FILES = 50;

/**
 * A policy of `rules` rules whose every prefix ending before a `[[rules]]`
 * header is itself a valid policy: a chunked write cut at any of those
 * boundaries would validate, so only timing keeps a half-written file out.
 */
function policyChunks(file: string, version: number, rules: number, valid: boolean): string[] {
  const head = `version = "1.0"\n# ${file} v${version}\n\n`;
  const rule = (i: number) =>
    `[[rules]]\nid = "${file}-v${version}-r${i}"\npriority = ${i}\nmatch = { resource = "tool" }\neffect = "${valid || i > 0 ? 'allow' : 'sometimes'}"\n\n`;
  return [head + rule(0), ...Array.from({ length: rules - 1 }, (_, i) => rule(i + 1))];
}

describe(`torture: ${EDITS} random edits across 50 files`, () => {
  it('never announces an invalid or half-written file, and ends on the final directory', async ({ server, root, listen, daemon: start }) => {
    const dir = path.join(root, 'policies');
    mkdirSync(dir);
    const listener = await listen([SUBJECTS.policyReload, SUBJECTS.policyRejected]);
    // TORTURE_FLAGS lets one check that the test fails when either protection is off (docs/development.md):
    // --quiet-window 0 lets writers that reopen the file between chunks be read half-written, and
    // --wait-for-writers false lets writers that hold it open and pause longer than the quiet window be.
    const extra = (process.env.TORTURE_FLAGS ?? '').split(' ').filter(Boolean);
    // The reload machinery on TOML files: a bus consumer reads them all.
    const daemon = start(['--servers', server.url, '--policies', dir, '--allow-empty', '--log-level', 'warn', '--consumer', 'bus', ...extra]);
    await until(() => listener.on(SUBJECTS.policyReload).length >= 1, 10_000, 'the startup announcement');

    const seed = Number(process.env.TORTURE_SEED ?? 20261127);
    const random = prng(seed);
    // Every complete content ever written, by path: valid, or invalid on its own.
    const valid = new Map<string, Set<string>>();
    const invalid = new Map<string, Set<string>>();
    const remember = (name: string, text: string, ok: boolean) => {
      const map = ok ? valid : invalid;
      if (!map.has(name)) map.set(name, new Set());
      map.get(name)?.add(sha256Hex(text));
    };
    const counts = { write: 0, atomic: 0, chunked: 0, reopening: 0, holdingSlowly: 0, delete: 0, pauses: 0 };
    const versions = new Array<number>(FILES).fill(0);
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

    for (let edit = 0; edit < EDITS; edit++) {
      const index = Math.floor(random() * FILES);
      const name = `f${String(index).padStart(2, '0')}.toml`;
      const file = path.join(dir, name);
      const op = random();
      const ok = random() > 0.03;
      const chunks = policyChunks(name, ++versions[index]!, 1 + Math.floor(random() * 4), ok);
      const text = chunks.join('');
      if (op < 0.15 && existsSync(file)) {
        unlinkSync(file);
        counts.delete++;
      } else if (op < 0.45) {
        remember(name, text, ok);
        writeFileSync(file, text);
        counts.write++;
      } else if (op < 0.75) {
        remember(name, text, ok);
        const tmp = path.join(dir, `.${name}.${edit}.tmp`);
        writeFileSync(tmp, text);
        renameSync(tmp, file);
        counts.atomic++;
      } else {
        // A writer that pauses between chunks: three kinds, each caught by one protection or both.
        remember(name, text, ok);
        const kind = random();
        if (kind < 0.3) {
          // Reopening the file for each chunk, 10 to 30 ms apart: longer than a read takes, shorter than
          // the quiet window (50 ms), which alone keeps the halves out (no process holds the file open).
          for (const [i, chunk] of chunks.entries()) {
            if (i > 0) await sleep(10 + Math.floor(random() * 20));
            if (i === 0) writeFileSync(file, chunk);
            else appendFileSync(file, chunk);
          }
          counts.reopening++;
        } else {
          // Holding the file open: a few milliseconds apart (both protections), or 60 to 90 ms apart, past
          // the quiet window, where only the wait for an open writer keeps the halves out.
          const slow = kind > 0.95;
          const fd = openSync(file, 'w');
          for (const [i, chunk] of chunks.entries()) {
            if (i > 0) await sleep(slow ? 60 + Math.floor(random() * 30) : 1 + Math.floor(random() * 2));
            writeSync(fd, chunk);
          }
          closeSync(fd);
          if (slow) counts.holdingSlowly++;
        }
        counts.chunked++;
      }
      // Random pauses: most edits follow each other at once; some leave the directory quiet for a while.
      const pause = random();
      if (pause < 0.02) {
        counts.pauses++;
        await sleep(60 + Math.floor(random() * 40));
      } else if (pause < 0.06) {
        await sleep(Math.floor(random() * 10));
      }
    }

    // The end: every file that exists gets a final valid version.
    for (let index = 0; index < FILES; index++) {
      const name = `f${String(index).padStart(2, '0')}.toml`;
      if (!existsSync(path.join(dir, name))) continue;
      const text = policyChunks(name, ++versions[index]!, 2, true).join('');
      remember(name, text, true);
      writeFileSync(path.join(dir, name), text);
    }
    const final = shellRevision(dir);
    await until(() => listener.on(SUBJECTS.policyReload).at(-1)?.payload.revision === final, 20_000, 'the final revision');

    const reloads = listener.on(SUBJECTS.policyReload).map((e) => e.payload as { revision: string; files: { path: string; sha256: string }[] });
    let checked = 0;
    for (const reload of reloads) {
      for (const f of reload.files) {
        const state = `${f.path} (${f.sha256.slice(0, 12)}) in revision ${reload.revision.slice(0, 12)}`;
        expect(invalid.get(f.path)?.has(f.sha256) ?? false, `an invalid file was announced: ${state}`).toBe(false);
        expect(valid.get(f.path)?.has(f.sha256) ?? false, `a half-written file was announced: ${state}`).toBe(true);
        checked++;
      }
    }
    // It published intermediate revisions (not just the last), and refused invalid ones. (On a busy machine,
    // fewer: reads that find a file written within the quiet window wait, up to 4 x max_wait.)
    expect(reloads.length).toBeGreaterThan(5);
    expect(listener.on(SUBJECTS.policyRejected).length).toBeGreaterThan(5);
    expect(checked).toBeGreaterThan(100);
    expect(counts.chunked).toBeGreaterThan(EDITS / 10);
    // Each protection alone had writers only it catches.
    expect(counts.reopening).toBeGreaterThan(EDITS / 40);
    expect(counts.holdingSlowly).toBeGreaterThan(EDITS / 400);
    expect(daemon.exit).toBeUndefined();
  }, 180_000);
});

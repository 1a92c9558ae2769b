import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN } from '../helpers/daemon.js';
import { tempDir } from '../helpers/temp-dir.js';

const DIST = path.dirname(BIN);
const builtin = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/** The built-in modules Node loaded for `bin.cjs ...args`, read when it exits. */
function modulesLoaded(args: string[]): string[] {
  const { dir, cleanup } = tempDir('bundles-');
  try {
    const preload = path.join(dir, 'dump.cjs');
    const out = path.join(dir, 'modules.txt');
    writeFileSync(preload, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(out)}, process.moduleLoadList.join('\\n')));\n`);
    const run = spawnSync(process.execPath, ['-r', preload, BIN, ...args], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    return readFileSync(out, 'utf8').split('\n');
  } finally {
    cleanup();
  }
}

describe('the bundles bin.cjs loads', () => {
  it('require the built-in modules, never import them (an import of node:http loads undici on Node 22 and later)', () => {
    for (const bundle of ['daemon.mjs', 'sidecar.mjs']) {
      const text = readFileSync(path.join(DIST, bundle), 'utf8');
      const imported = [...text.matchAll(/(?:^|[;}\s])import\s*(?:[\w$*{}\s,]+from\s*)?["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/gm)]
        .map((m) => m[1] ?? m[2])
        .filter((m) => m !== undefined && builtin.has(m));
      // The banner's createRequire is the one import left.
      expect(imported, bundle).toEqual(['node:module']);
    }
  });

  it('load neither undici nor node:http2 on this Node, for the daemon or the sidecar', () => {
    for (const args of [['--help'], ['sidecar', '--help']]) {
      const loaded = modulesLoaded(args);
      expect(loaded.length, args.join(' ')).toBeGreaterThan(50);
      expect(loaded.filter((m) => /undici|http2/.test(m)), args.join(' ')).toEqual([]);
    }
  });
});

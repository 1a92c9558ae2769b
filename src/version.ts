import { readFileSync } from 'node:fs';

/**
 * This package's version, from its package.json: one level up from `dist/`
 * (or `src/`), two from the bundled daemon in `dist/cli/`.
 */
let cached: string | undefined;

export function packageVersion(): string {
  cached ??= readVersion();
  return cached;
}

function readVersion(): string {
  for (const relative of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'nachos-sentinel' && pkg.version) return pkg.version;
    } catch {
      // try the next place
    }
  }
  return '0.0.0-unknown';
}

import { readFileSync } from 'node:fs';

/**
 * This package's version, from its package.json: two levels up from
 * `dist/cli/` (this module compiled, or bundled into the daemon) and from `src/cli/`.
 */
let cached: string | undefined;

export function packageVersion(): string {
  cached ??= readVersion();
  return cached;
}

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'nachos-sentinel' && pkg.version) return pkg.version;
  } catch {
    // not installed as a package: say so rather than guess
  }
  return '0.0.0-unknown';
}

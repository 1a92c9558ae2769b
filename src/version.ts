import { readFileSync } from 'node:fs';

/** This package's version, read from its package.json (two levels up from `dist/` or `src/`). */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

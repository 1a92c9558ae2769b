import { execFileSync } from 'node:child_process';

/**
 * The revision of a directory's policy files, computed the documented way
 * with coreutils, independently of the code under test.
 */
export function shellRevision(dir: string): string {
  const out = execFileSync('sh', ['-c', 'ls *.toml >/dev/null 2>&1 || exit 0; sha256sum *.toml | LC_ALL=C sort -k2 | sha256sum'], {
    cwd: dir,
  });
  return out.toString().split(' ')[0] as string;
}

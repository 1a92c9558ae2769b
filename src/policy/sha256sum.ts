import { compareBytes } from './byte-order.js';

/**
 * The lines `sha256sum` prints for a set of files, `<sha256>  <path>\n`, in
 * byte order of path: what the revision hashes and what a signature covers.
 */
export function sha256sumLines(files: readonly { path: string; sha256: string }[]): string {
  return [...files]
    .sort((a, b) => compareBytes(a.path, b.path))
    .map((f) => `${f.sha256}  ${f.path}\n`)
    .join('');
}

/**
 * Byte order, so an order (and so a revision) never depends on the locale:
 * the order of the strings' UTF-8 bytes, which is the order of their code
 * points (a lone surrogate counts as U+FFFD, as `Buffer.from` encodes it).
 * Compared in place: sorting 1,000 names allocates nothing.
 */
export function compareBytes(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = codePoint(a, i);
    const y = codePoint(b, j);
    if (x !== y) return x < y ? -1 : 1;
    i += x > 0xffff ? 2 : 1;
    j += y > 0xffff ? 2 : 1;
  }
  return i < a.length ? 1 : j < b.length ? -1 : 0;
}

function codePoint(s: string, i: number): number {
  const c = s.codePointAt(i) as number;
  return c >= 0xd800 && c <= 0xdfff ? 0xfffd : c;
}

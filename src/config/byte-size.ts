/**
 * Sizes as people write them: "512KiB", "1MiB", "2MB", "4096". Binary units
 * (KiB, MiB) are powers of 1024, decimal ones (kB, MB) powers of 1000; a bare
 * number is bytes. Returns bytes, or throws a TypeError.
 */
const UNITS: Record<string, number> = {
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

export function parseByteSize(input: unknown): number {
  if (typeof input === 'number' && Number.isSafeInteger(input) && input > 0) return input;
  if (typeof input === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(input);
    const unit = m ? UNITS[(m[2] || 'b').toLowerCase()] : undefined;
    if (m && unit !== undefined) {
      const bytes = Math.floor(Number(m[1]) * unit);
      if (bytes > 0) return bytes;
    }
  }
  throw new TypeError(`${JSON.stringify(input)} is not a size; write it like "512KiB", "1MiB" or a number of bytes`);
}

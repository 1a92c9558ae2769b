/**
 * Durations as people write them: "50ms", "5s", "1m", "1h", "1m30s", "1.5s".
 * Written as text (a flag, a variable, a string in the file), a duration needs
 * its unit, but 0: `--timeout 1` meaning one millisecond surprised everyone
 * who meant a second. A TOML integer is milliseconds (the file's schema says
 * so). Returns milliseconds, or throws a TypeError whose message the caller
 * prefixes with where the value came from.
 */
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;

export function parseDuration(input: unknown): number {
  if (typeof input === 'number') {
    if (Number.isFinite(input) && input >= 0) return input;
    throw new TypeError(`expected a duration such as "50ms", "5s" or "1m", got ${input}`);
  }
  if (typeof input !== 'string') {
    throw new TypeError(`expected a duration such as "50ms", "5s" or "1m", got ${typeof input}`);
  }
  const text = input.trim();
  if (/^0+(\.0+)?$/.test(text)) return 0;
  if (/^\d+(\.\d+)?$/.test(text)) {
    throw new TypeError(`"${text}" needs a unit: ${text}s, ${text}ms or ${text}m (a bare number is not taken as milliseconds)`);
  }
  let total = 0;
  let consumed = 0;
  PART.lastIndex = 0;
  for (let m = PART.exec(text); m; m = PART.exec(text)) {
    total += Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
    consumed = PART.lastIndex;
  }
  if (consumed === 0 || consumed !== text.length) {
    throw new TypeError(`"${input}" is not a duration; write it like "50ms", "5s", "1m" or "1m30s"`);
  }
  return total;
}

/** The inverse, for help texts and logs: 50 -> "50ms", 60000 -> "1m". */
export function formatDuration(ms: number): string {
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1000 && ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

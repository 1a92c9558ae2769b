import { describe, expect, it } from 'vitest';
import { parseByteSize } from '../../src/config/byte-size.js';
import { formatDuration, parseDuration } from '../../src/config/duration.js';
import { formatMs } from '../../src/cli/status-table.js';

describe('parseDuration', () => {
  it.each([
    ['50ms', 50],
    ['5s', 5000],
    ['1m', 60_000],
    ['1h', 3_600_000],
    ['1m30s', 90_000],
    ['1.5s', 1500],
    [' 200ms ', 200],
    ['0', 0],
    [0, 0],
    [75, 75],
  ])('%j is %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each(['', '5x', 'ms', '5 s', '-1s', '1s2', 'abc', '1d'])('rejects %j with an example of the format', (input) => {
    expect(() => parseDuration(input)).toThrow(/duration|write it like/);
  });

  it('asks for a unit where text gives a bare number (--timeout 1 is not one millisecond), naming the choices', () => {
    expect(() => parseDuration('1')).toThrow('"1" needs a unit: 1s, 1ms or 1m (a bare number is not taken as milliseconds)');
    expect(() => parseDuration('250')).toThrow(/needs a unit/);
  });

  it('rejects non-strings and negative numbers', () => {
    expect(() => parseDuration(-5)).toThrow(TypeError);
    expect(() => parseDuration(true)).toThrow(TypeError);
    expect(() => parseDuration(Number.NaN)).toThrow(TypeError);
  });

  it('formats back the way people write it', () => {
    expect([50, 1000, 60_000, 3_600_000, 1500].map(formatDuration)).toEqual(['50ms', '1s', '1m', '1h', '1500ms']);
  });
});

describe('parseByteSize', () => {
  it.each([
    ['1MiB', 1024 * 1024],
    ['512KiB', 512 * 1024],
    ['2MB', 2_000_000],
    ['1kb', 1000],
    ['4096', 4096],
    [4096, 4096],
    ['1.5KiB', 1536],
  ])('%j is %d bytes', (input, bytes) => {
    expect(parseByteSize(input)).toBe(bytes);
  });

  it.each(['', '0', 'lots', '1XB', -1, 0, 1.5])('rejects %j', (input) => {
    expect(() => parseByteSize(input)).toThrow(/not a size/);
  });
});

describe('formatMs (durations shown to people)', () => {
  it.each([
    [0, '0ms'],
    [999.4, '999ms'],
    [999.6, '1.0s'],
    [12_345, '12.3s'],
    [59_960, '1m0s'],
    [119_600, '2m0s'],
    [245_000, '4m5s'],
    [3_599_600, '1h0m'],
    [7_199_000, '2h0m'],
    [7_800_000, '2h10m'],
  ])('%s ms is %s', (ms, text) => {
    expect(formatMs(ms)).toBe(text);
  });
});

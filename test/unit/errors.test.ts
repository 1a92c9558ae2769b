import { describe, expect, it } from 'vitest';
import { ConfigError, ERROR_CODES, SentinelError, UsageError, formatProblem } from '../../src/errors.js';

describe('error catalogue', () => {
  it('has unique, stable, prefixed codes named after their keys', () => {
    const codes = Object.values(ERROR_CODES);
    expect(new Set(codes).size).toBe(codes.length);
    for (const [key, code] of Object.entries(ERROR_CODES)) expect(code).toBe(`SENTINEL_ERR_${key}`);
  });

  it('gives every error class a code and keeps the cause', () => {
    const cause = new Error('root');
    const err = new ConfigError('sentinel.toml:3:1', 'bad', { cause });
    expect(err).toBeInstanceOf(SentinelError);
    expect(err.code).toBe(ERROR_CODES.CONFIG);
    expect(err.cause).toBe(cause);
    expect(err.message).toBe('sentinel.toml:3:1: bad');
    expect(new UsageError('x').code).toBe(ERROR_CODES.USAGE);
  });

  it('formats problems the way editors read them', () => {
    expect(formatProblem({ code: ERROR_CODES.POLICY_SCHEMA, file: 'a.toml', line: 3, column: 7, message: 'm', ruleId: 'r' })).toBe(
      'a.toml:3:7: m (rule "r")',
    );
    expect(formatProblem({ code: ERROR_CODES.POLICY_EMPTY, file: '', message: 'empty' })).toBe('.: empty');
  });
});

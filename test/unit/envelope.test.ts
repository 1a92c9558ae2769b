import { describe, expect, it } from 'vitest';
import { decodeEnvelope, encodeEnvelope, makeEnvelope } from '../../src/protocol/envelope.js';
import { SUBJECTS } from '../../src/protocol/topics.js';

describe('envelope', () => {
  it('wraps a payload the Nachos way', () => {
    const env = makeEnvelope(SUBJECTS.policyReload, 'sentinel', { a: 1 }, { correlationId: 'c1', now: Date.UTC(2026, 10, 27) });
    expect(env).toMatchObject({
      source: 'sentinel',
      type: 'system.policy.reload',
      correlationId: 'c1',
      timestamp: '2026-11-27T00:00:00.000Z',
      payload: { a: 1 },
    });
    expect(env.id).toMatch(/^[0-9a-f-]{36}$/);
    expect('correlationId' in makeEnvelope(SUBJECTS.health, 's', {})).toBe(false);
  });

  it('round-trips', () => {
    const env = makeEnvelope(SUBJECTS.health, 'x', { ok: true });
    const decoded = decodeEnvelope(encodeEnvelope(env), 1024);
    expect(decoded).toEqual({ ok: true, value: env });
  });

  it.each([
    ['garbage', Buffer.from('not json'), 'json'],
    ['invalid UTF-8', Buffer.from([0xff, 0xfe, 0x7b]), 'encoding'],
    ['an array', Buffer.from('[1,2]'), 'envelope'],
    ['a missing id', Buffer.from('{"timestamp":"t","source":"s","type":"x","payload":{}}'), 'envelope'],
    ['a wrong type', Buffer.from('{"id":1,"timestamp":"t","source":"s","type":"x","payload":{}}'), 'envelope'],
    ['an oversized message', Buffer.alloc(2048, 0x20), 'oversized'],
  ])('refuses %s without throwing', (_name, data, reason) => {
    const decoded = decodeEnvelope(data, 1024);
    expect(decoded.ok).toBe(false);
    if (!decoded.ok) expect(decoded.reason).toBe(reason);
  });
});

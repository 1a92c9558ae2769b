import { describe, expect, it } from 'vitest';
import { SUBJECTS, envelopeType, policyTransfer, subjectToken } from '../../src/protocol/topics.js';

describe('topics', () => {
  it('builds the transfer subject of an instance', () => {
    expect(policyTransfer('sentinel-1a2b')).toBe('nachos.system.policy.transfer.sentinel-1a2b');
  });

  it.each(['', 'a.b', '*', '>', 'a b', 'tab\there', 'new\nline', 'x>'])('rejects the token %j', (token) => {
    expect(() => subjectToken(token)).toThrow(TypeError);
    expect(() => policyTransfer(token)).toThrow(/instance id/);
  });

  it('derives the envelope type from the subject', () => {
    expect(envelopeType(SUBJECTS.policyReload)).toBe('system.policy.reload');
    expect(envelopeType(SUBJECTS.health)).toBe('system.health');
  });

  it('keeps every subject under nachos. and unique', () => {
    const all = Object.values(SUBJECTS);
    expect(new Set(all).size).toBe(all.length);
    for (const s of all) expect(s).toMatch(/^nachos\.[a-z]+(\.[a-z]+)+$/);
  });
});

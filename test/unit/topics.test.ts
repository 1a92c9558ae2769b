import { describe, expect, it } from 'vitest';
import {
  SUBJECTS,
  channelInbound,
  channelOutbound,
  envelopeType,
  subjectToken,
  toolCall,
  toolResult,
} from '../../src/topics.js';

describe('topics', () => {
  it('builds the bus subjects', () => {
    expect(channelInbound('slack')).toBe('nachos.channel.slack.inbound');
    expect(channelOutbound('telegram')).toBe('nachos.channel.telegram.outbound');
    expect(toolCall('browser')).toBe('nachos.tool.browser.call');
    expect(toolResult('web_search')).toBe('nachos.tool.web_search.result');
  });

  it.each(['', 'a.b', '*', '>', 'a b', 'tab\there', 'new\nline', 'x>'])('rejects the token %j', (token) => {
    expect(() => subjectToken(token)).toThrow(TypeError);
    expect(() => toolCall(token)).toThrow(/tool name/);
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

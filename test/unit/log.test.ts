import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { redactUrl } from '../../src/bus/url-credentials.js';
import { createLogger } from '../../src/log/logger.js';

describe('logger', () => {
  it('puts component and instance on every line, and censors secrets wherever they appear', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _e, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const { log } = createLogger({ level: 'info', component: 'sentinel', instance: 'h-1', destination });
    log.info({ password: 'p4ss', auth: { token: 't0ken', seed: 'SUAseed' }, nkey: 'nk' }, 'hello');
    const line = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
    expect(line).toMatchObject({ component: 'sentinel', instance: 'h-1', level: 'info', msg: 'hello', password: '[redacted]' });
    expect(lines.join('')).not.toMatch(/p4ss|t0ken|SUAseed|"nk"/);
  });

  it('strips credentials from server URLs', () => {
    expect(redactUrl('nats://alice:secret@nats:4222')).toBe('nats://nats:4222');
    expect(redactUrl('tls://token@host:4443')).toBe('tls://host:4443');
    expect(redactUrl('nats://host:4222')).toBe('nats://host:4222');
    expect(redactUrl('host:4222')).toBe('host:4222');
    // Unencoded `/`, `?`, `#` and `@` in a secret (base64 tokens have `/`): all of it goes.
    expect(redactUrl('nats://tok/en+x=@host:4222')).toBe('nats://host:4222');
    expect(redactUrl('nats://user:se/c?r#e@t@host:4222')).toBe('nats://host:4222');
  });
});

describe('credentials in server URLs', () => {
  it('are taken out of the URLs and passed as options', async () => {
    const { splitUrlCredentials } = await import('../../src/bus/url-credentials.js');
    expect(splitUrlCredentials(['nats://alice:p%40ss@a:4222', 'nats://b:4222'])).toEqual({
      servers: ['nats://a:4222', 'nats://b:4222'],
      user: 'alice',
      pass: 'p@ss',
    });
    expect(splitUrlCredentials(['tls://s3cr3t@a:4222'])).toEqual({ servers: ['tls://a:4222'], token: 's3cr3t' });
    expect(splitUrlCredentials(['a:4222'])).toEqual({ servers: ['a:4222'] });
    expect(splitUrlCredentials(['nats://tok/en+x=@a:4222'])).toEqual({ servers: ['nats://a:4222'], token: 'tok/en+x=' });
    // A malformed escape is taken literally, not a crash.
    expect(splitUrlCredentials(['nats://u:p%zz@a:4222'])).toEqual({ servers: ['nats://a:4222'], user: 'u', pass: 'p%zz' });
  });
});

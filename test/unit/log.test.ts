import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { redactUrl } from '../../src/bus/url-credentials.js';
import { createLogger, LOG_BUFFER_BYTES } from '../../src/log/logger.js';

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

  it('drops the lines a stalled stdout does not take once its buffer is full, and counts exactly those that never arrive', async () => {
    // The logger as the daemon makes it (stdout, no destination given), in a child whose stdout is a pipe
    // this test does not read until every line has been logged: a log driver that stopped reading.
    const LINES = 20_000;
    const logger = pathToFileURL(path.resolve(import.meta.dirname, '../../src/log/logger.ts')).href;
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const script = `
      const { createLogger } = await import(${JSON.stringify(logger)});
      const { log, stats } = createLogger({ level: 'info', format: 'json', component: 'c', instance: 'i' });
      const pad = 'x'.repeat(200);
      for (let n = 0; n < ${LINES}; n++) {
        log.info({ n, pad }, 'line');
        // A turn of the event loop now and then: the destination gets its chance to write, and cannot.
        if (n % 500 === 499) await new Promise((r) => setImmediate(r));
      }
      process.stderr.write('dropped ' + stats.dropped + '\\n');
    `;
    const child = spawn(process.execPath, ['--import', tsx, '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pause();
    onTestFinished(() => {
      child.kill('SIGKILL');
    });
    let stderr = '';
    const dropped = await new Promise<number>((resolve, reject) => {
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        const m = /dropped (\d+)\n/.exec(stderr);
        if (m) resolve(Number(m[1]));
      });
      child.on('exit', () => reject(new Error(`the child ended without a count: ${stderr}`)));
    });
    // Every line has been logged (or dropped): now read what the pipe and the buffer still hold, to the end.
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
    });
    child.stdout.resume();
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, stderr).toBe(0);
    const arrived = out
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { msg: string; n: number });
    expect(arrived.every((l) => l.msg === 'line')).toBe(true);
    // Lines were dropped: far fewer arrived than were logged (the buffer holds about 1 MiB of them, the pipe a little more).
    expect(dropped).toBeGreaterThan(0);
    expect(Buffer.byteLength(out)).toBeLessThan(2 * LOG_BUFFER_BYTES);
    // And the count is exact: every line logged either arrived, whole and once, or was counted as dropped.
    expect(new Set(arrived.map((l) => l.n)).size).toBe(arrived.length);
    expect(arrived.length + dropped).toBe(LINES);
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

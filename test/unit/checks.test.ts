import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CheckRunner, configuredCheck, withFailure } from '../../src/health/checks.js';

/** Whether a process whose command line contains `text` runs. */
function running(text: string): boolean {
  try {
    return execFileSync('pgrep', ['-f', text], { encoding: 'utf8' }).trim() !== '';
  } catch {
    return false;
  }
}

describe('CheckRunner', () => {
  it('cuts off the checks in flight when stopped, killing the whole command, and runs no more', { timeout: 5000 }, async () => {
    // A shell and its child, each findable: the shell by a marker, the sleep by its odd duration.
    const sleep = `sleep 29.${process.pid % 1000}${Date.now() % 1000}`;
    const shell = `${sleep}; : sentinel-check-${process.pid}`;
    let changes = 0;
    const runner = new CheckRunner(
      [configuredCheck({ type: 'command', name: 'slow', required: true, timeoutMs: 20_000, argv: ['/bin/sh', '-c', shell], expectExit: 0 })],
      () => changes++,
    );
    const run = runner.runAll();
    while (!running(sleep)) await new Promise((r) => setTimeout(r, 20));
    runner.stop();
    // Without stop() this would wait for the 20 s timeout, past the test's own 5 s.
    await run;
    expect(running(shell)).toBe(false);
    expect(running(sleep)).toBe(false);
    expect(changes).toBe(0);
    expect(runner.complete).toBe(false);
    await runner.runAll();
    expect(runner.complete).toBe(false);
  });

  it('weighs a failure by whether the check is required', () => {
    expect(withFailure('healthy', true)).toBe('unhealthy');
    expect(withFailure('healthy', false)).toBe('degraded');
    expect(withFailure('degraded', false)).toBe('degraded');
    expect(withFailure('unhealthy', false)).toBe('unhealthy');
  });
});

describe('a neighbour that answers with a Nachos HealthCheck', () => {
  /** One HTTP check against a server answering `body` with `status` and `type`. */
  async function snapshotOf(status: number, body: string, type = 'application/json') {
    const { createServer } = await import('node:http');
    const server = createServer((_req, res) => res.writeHead(status, { 'content-type': type }).end(body));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      const runner = new CheckRunner([configuredCheck({ type: 'http', name: 'gateway', required: true, timeoutMs: 2000, url: `http://127.0.0.1:${port}/health`, expectStatus: 200 })]);
      await runner.runAll();
      return runner.snapshot();
    } finally {
      server.close();
    }
  }
  const report = (status: string, checks: Record<string, unknown>) => JSON.stringify({ status, component: 'gateway', version: '1', uptime: 1, checks });

  it('takes over its status and checks, at any status code', async () => {
    expect(await snapshotOf(503, report('unhealthy', { llm: 'error', database: 'ok' }))).toMatchObject({
      status: 'unhealthy',
      checks: { gateway: 'ok', llm: 'error', database: 'ok' },
      details: { gateway: { message: 'HTTP 503: reports unhealthy' }, llm: { message: 'reported by gateway' } },
    });
    // Nachos answers 503 when degraded too: degraded it is, not unhealthy.
    expect((await snapshotOf(503, report('degraded', { bus: 'error' }))).status).toBe('degraded');
    expect((await snapshotOf(200, report('healthy', { bus: 'ok' }))).status).toBe('healthy');
  });

  it('takes nothing from a body that is not one, or that would not fit a heartbeat', async () => {
    expect(await snapshotOf(503, 'Service Unavailable', 'text/plain')).toMatchObject({ status: 'unhealthy', checks: { gateway: 'error' } });
    expect(await snapshotOf(200, JSON.stringify({ status: 'great', component: 'gateway', checks: {} }))).toMatchObject({ status: 'healthy', checks: { gateway: 'ok' } });
    expect(await snapshotOf(503, report('unhealthy', { x: 'error' }).padEnd(70_000, ' '))).toMatchObject({ status: 'unhealthy', checks: { gateway: 'error' } });
    // A flood of names: a bounded number, each of a bounded length, and only ok or error.
    const many = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`c${i}`, i % 2 ? 'ok' : 'error']));
    const flooded = await snapshotOf(503, report('unhealthy', { ...many, ['x'.repeat(100)]: 'error', weird: 'maybe' }));
    expect(Object.keys(flooded.checks).length).toBeLessThanOrEqual(1 + 32);
    expect(Object.keys(flooded.checks).every((k) => k.length <= 48)).toBe(true);
    expect(flooded.checks.weird).toBeUndefined();
  });
});

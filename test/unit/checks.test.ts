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

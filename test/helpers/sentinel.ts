import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { resolveConfig } from '../../src/config/resolve.js';
import type { SentinelConfig } from '../../src/config/settings.js';
import type { ApplyContext, ApplyOutcome } from '../../src/reload/reloader.js';
import { makeInstanceId } from '../../src/health/instance-id.js';
import { Sentinel } from '../../src/roles/sentinel.js';
import { Sidecar } from '../../src/roles/sidecar.js';
import { SIDECAR_SETTINGS } from '../../src/cli/sidecar.js';
import { packageVersion } from '../../src/cli/version.js';
import { until } from './until.js';

/** A logger whose lines a test can read back. */
export function captureLogger(level = 'debug'): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level }, stream), lines };
}

/** An in-process sentinel with the same defaults as the CLI, and a record of every apply. */
export async function startSentinel(flags: Record<string, string | boolean | string[]>, cwd: string) {
  // An ephemeral HTTP port, so that suites running side by side never collide; a state directory of its own.
  const stateDir = flags['state-dir'] === undefined ? mkdtempSync(path.join(tmpdir(), 'sentinel-state-')) : undefined;
  const config: SentinelConfig = resolveConfig({ flags: { http: '127.0.0.1:0', ...(stateDir ? { 'state-dir': stateDir } : {}), ...flags }, env: {}, cwd });
  // Every line is kept for the test to read: debug unless the test asks for less (a flood would fill memory).
  const { log, lines } = captureLogger(typeof flags['log-level'] === 'string' ? flags['log-level'] : 'debug');
  const sentinel = new Sentinel(config, { log, instance: makeInstanceId('test'), version: packageVersion(), dirCheckIntervalMs: 50 });
  const applies: { outcome: ApplyOutcome; context: ApplyContext }[] = [];
  sentinel.reloader.on('applied', (outcome, context) => applies.push({ outcome, context }));
  await sentinel.start();
  return {
    sentinel,
    lines,
    applies,
    /**
     * Waits until the bus connection is up and the server has taken its subscriptions (one round
     * trip after them): a request from another connection then finds the sentinel's responders.
     * The first announcement follows at once.
     */
    connected: () => until(() => sentinel.bus.connected, 10_000, 'the sentinel to connect').then(() => sentinel.bus.flush()),
    close: async () => {
      await sentinel.close();
      if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/** An in-process sidecar, resolved as `nachos-sentinel sidecar` resolves it. */
export async function startSidecar(flags: Record<string, string | boolean | string[]>, cwd: string) {
  const config = resolveConfig({ flags: { ...flags }, env: {}, cwd }, SIDECAR_SETTINGS);
  const { log, lines } = captureLogger(typeof flags['log-level'] === 'string' ? flags['log-level'] : 'debug');
  const sidecar = new Sidecar(config, { log, instance: makeInstanceId('sidecar'), version: packageVersion() });
  await sidecar.start();
  return {
    sidecar,
    lines,
    /** As the sentinel's: connected, and its subscriptions taken by the server. */
    connected: () => until(() => sidecar.bus.connected, 10_000, 'the sidecar to connect').then(() => sidecar.bus.flush()),
    close: () => sidecar.close(),
  };
}

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect } from 'vitest';
import { it } from '../helpers/fixtures.js';
import { policyDir } from '../helpers/policy-files.js';
import { startSentinel } from '../helpers/sentinel.js';

/** Prometheus' own checker, from Debian's `prometheus` package (.ci/run installs it when missing). */
const PROMTOOL = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p));
const ROOT = path.resolve(import.meta.dirname, '../..');

function promtool(args: string[], input?: string) {
  if (!PROMTOOL) throw new Error('promtool not found: apt-get install -y prometheus (its package carries promtool)');
  return spawnSync(PROMTOOL, args, { cwd: ROOT, input, encoding: 'utf8' });
}

describe('Prometheus, as its users check it', () => {
  let metrics: string;
  let stop: () => Promise<void>;

  it.beforeAll(async ({ server }) => {
    const { root, dir, cleanup } = policyDir();
    const running = await startSentinel({ servers: server.url, policies: dir }, root);
    await running.connected();
    metrics = await (await fetch(`http://127.0.0.1:${running.sentinel.httpAddress?.port}/metrics`)).text();
    stop = async () => {
      await running.close();
      cleanup();
    };
  });
  it.afterAll(async () => {
    await stop();
  });

  it('finds nothing to say about /metrics (`promtool check metrics`)', () => {
    const r = promtool(['check', 'metrics'], metrics);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('accepts the shipped alert rules, and their unit tests pass (`promtool test rules`)', () => {
    const check = promtool(['check', 'rules', 'deploy/alerts.yaml']);
    expect(check.status, check.stdout + check.stderr).toBe(0);
    const test = promtool(['test', 'rules', 'deploy/alerts.test.yaml']);
    expect(test.status, test.stdout + test.stderr).toBe(0);
    expect(test.stdout).toContain('SUCCESS');
  });

  it('alerts only on metrics the daemon exports', () => {
    const rules = readFileSync(path.join(ROOT, 'deploy/alerts.yaml'), 'utf8');
    const used = new Set([...rules.matchAll(/expr: (.*)/g)].flatMap((m) => [...(m[1] ?? '').matchAll(/\b((?:nachos_sentinel|reloader)_[a-z_]+)/g)].map((n) => n[1])));
    expect(used.size).toBeGreaterThanOrEqual(5);
    for (const name of used) expect(metrics, name).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
  });
});

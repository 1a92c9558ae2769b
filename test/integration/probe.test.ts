import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { describe, expect } from 'vitest';
import { SUBJECTS } from '../../src/protocol/topics.js';
import { Daemon } from '../helpers/daemon.js';
import { test } from '../helpers/fixtures.js';
import { freePort } from '../helpers/nats-server.js';
import { until } from '../helpers/until.js';

/** This file's helpers: the probe run in the test's root, a daemon with its HTTP address, a component's heartbeats. */
const it = test
  .extend('probe', async ({ root }) => (args: string[], env: Record<string, string> = {}) => Daemon.run(['--once', ...args], env, root))
  .extend('serve', async ({ dir, daemon }) => async (args: string[]) => {
    const http = `127.0.0.1:${await freePort()}`;
    const d = daemon(['--policies', dir, '--interval', '200ms', '--http', http, ...args]);
    return { d, http };
  })
  .extend('beat', async ({ beater }) => (component: string) => beater(component, `${component}-1`, 200))
  .extend('settled', async ({ server, probe }) => () =>
    /** Probes until the overall status is past the sentinel's first interval. */
    until(
      async () => {
        const { stdout } = await probe(['--servers', server.url, '--json']);
        const status = (JSON.parse(stdout || '{}') as { status?: string }).status;
        return status !== undefined && status !== 'unknown';
      },
      10_000,
      'a settled view',
    ),
  );

describe('nachos-sentinel --once', () => {
  it('exits 0 and prints a table when the system is healthy', async ({ server, probe, serve, beat, settled }) => {
    await serve(['--servers', server.url, '--require', 'sentinel,gateway']);
    await beat('gateway');
    await settled();
    const result = await probe(['--servers', server.url]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^nachos: healthy \(every required component is healthy\)\npolicy: 1 of 1 on revision [0-9a-f]{12}/);
    expect(result.stdout).toMatch(/COMPONENT\s+ROLE\s+STATUS\s+INSTANCES\s+LAST SEEN\s+POLICY/);
    expect(result.stdout).toMatch(/\ngateway\s+required\s+healthy\s+1\/1\s+\d+ms ago\s+-\s+1 of 1 healthy\n/);
    expect(result.stdout).toMatch(/\nsentinel\s+required\s+healthy\s+1\/1\s+\d+ms ago\s+[0-9a-f]{12}\s+1 of 1 healthy\n/);
  });

  it('exits 0 when degraded, 1 with --strict, and 1 when unhealthy', async ({ server, probe, serve, beat, settled }) => {
    await serve(['--servers', server.url, '--require', 'gateway', '--optional', 'slack']);
    const gateway = await beat('gateway');
    await settled();
    const degraded = await probe(['--servers', server.url]);
    expect(degraded.code).toBe(0);
    expect(degraded.stdout).toContain('nachos: degraded (optional slack is missing (has not reported))');
    expect((await probe(['--servers', server.url, '--strict'])).code).toBe(1);

    gateway.status = 'unhealthy';
    await until(async () => (await probe(['--servers', server.url])).code === 1, 5000, 'the probe to fail');
    const unhealthy = await probe(['--servers', server.url, '--json']);
    expect(unhealthy.code).toBe(1);
    expect(JSON.parse(unhealthy.stdout)).toMatchObject({ ok: false, status: 'unhealthy', reason: 'required gateway is unhealthy; optional slack is missing (has not reported)' });
  });

  it('answers the first probe right after start once the roster is heard; exits 1 (unknown) only while a rostered component has not been heard in the first interval', async ({
    server,
    probe,
    serve,
    beat,
  }) => {
    const { d } = await serve(['--servers', server.url, '--interval', '30s', '--require', 'gateway']);
    await d.waitForLog((l) => l.msg === 'connected to the bus');
    const waiting = await until(async () => {
      const r = await probe(['--servers', server.url, '--json']);
      return r.stdout ? r : undefined;
    }, 5000, 'an answer');
    expect(waiting.code).toBe(1);
    expect(JSON.parse(waiting.stdout)).toMatchObject({ status: 'unknown', reason: 'within the first interval after connecting' });
    // A probe asked now waits (within its --timeout) for the first round: the gateway beats 300 ms later,
    // and the probe answers healthy, not unknown, long before the 30 s interval is over.
    const asked = probe(['--servers', server.url, '--timeout', '5s', '--json']);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await beat('gateway');
    const answered = await asked;
    expect(JSON.parse(answered.stdout)).toMatchObject({ ok: true, status: 'healthy' });
    expect(answered.code).toBe(0);
  });

  it('answers healthy on the first probe right after start, with no start period, when the sentinel is its whole roster', async ({ server, probe, serve }) => {
    const { d } = await serve(['--servers', server.url, '--interval', '30s']);
    await d.waitForLog((l) => l.msg === 'connected to the bus');
    const first = await until(async () => {
      const r = await probe(['--servers', server.url, '--json']);
      return r.stdout ? r : undefined;
    }, 5000, 'an answer');
    expect(JSON.parse(first.stdout)).toMatchObject({ ok: true, status: 'healthy' });
    expect(first.code).toBe(0);
  });

  it('answers for one component with --component', async ({ server, probe, serve, beat, settled }) => {
    await serve(['--servers', server.url, '--require', 'gateway']);
    await beat('gateway');
    await settled();
    const mine = await probe(['--servers', server.url, '--component', 'gateway']);
    expect(mine.code).toBe(0);
    expect(mine.stdout).toMatch(/^component gateway: healthy\n/);
    expect(mine.stdout).not.toContain('sentinel ');
    const json = await probe(['--servers', server.url, '--component', 'gateway', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, probed: 'gateway', status: 'healthy', reason: '1 of 1 healthy', overall: 'healthy', overallReason: 'every required component is healthy' });
    const nobody = await probe(['--servers', server.url, '--component', 'nobody', '--json']);
    expect(nobody.code).toBe(1);
    // The reason is the component's, not the system's ("every required component is healthy" beside "missing").
    expect(JSON.parse(nobody.stdout)).toMatchObject({ ok: false, probed: 'nobody', status: 'missing', reason: 'never heard: no heartbeat of nobody since this sentinel started', overallReason: 'every required component is healthy' });
    const unit = await probe(['--servers', server.url, '--timeout', '1']);
    expect(unit).toMatchObject({ code: 1, stderr: 'nachos-sentinel --once: --timeout: "1" needs a unit: 1s, 1ms or 1m (a bare number is not taken as milliseconds)\n' });
  });

  it('exits 1 with the reason when the bus is unreachable, or no sentinel answers', async ({ server, probe }) => {
    const port = await freePort();
    const down = await probe(['--servers', `nats://127.0.0.1:${port}`]);
    expect(down).toMatchObject({ code: 1, stdout: '' });
    expect(down.stderr).toBe(`nachos-sentinel --once: bus unreachable at nats://127.0.0.1:${port}: connection refused\n`);

    const nobody = await probe([], { NATS_URL: server.url });
    expect(nobody.code).toBe(1);
    expect(nobody.stderr).toContain('no sentinel answered on nachos.system.health.status');
  });

  it('exits 1 when the answer does not come within --timeout', async ({ server, defer, probe }) => {
    // Something answers nothing on the subject: the request waits until the probe's deadline.
    const mute = await connect({ servers: server.url });
    mute.subscribe(SUBJECTS.healthStatus, { callback: () => undefined });
    await mute.flush();
    defer(() => mute.close());
    const started = performance.now();
    const result = await probe(['--servers', server.url, '--timeout', '300ms']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/no answer/);
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('exits 1, never 2, on a bad flag or value', async ({ probe }) => {
    // --servers to a closed port: were a flag ignored, the probe would fail on the bus, with another message.
    const cases: [string[], string][] = [
      [['--bogus'], "Unknown option '--bogus'; see --once --help"],
      [['--timeout', 'soon'], '--timeout: "soon" is not a duration'],
      [['--http', 'nowhere', '--self'], '--http: "nowhere" is not a listen address'],
      [['extra.toml'], "Unexpected argument 'extra.toml'; see --once --help"],
    ];
    for (const [args, message] of cases) {
      const result = await probe(['--servers', 'nats://127.0.0.1:1', ...args]);
      expect(result.code, args.join(' ')).toBe(1);
      expect(result.stderr).toContain(`nachos-sentinel --once: ${message}`);
    }
    expect((await probe(['--help'])).code).toBe(0);
  });

  it('--self asks the daemon over HTTP: 0 when ready, 1 when not, 1 when nobody listens', async ({ server, probe, serve }) => {
    const { d, http } = await serve(['--servers', server.url]);
    await d.waitForLog((l) => l.msg === 'connected to the bus');
    const ready = await probe(['--self', '--http', http]);
    expect(ready).toMatchObject({ code: 0 });
    expect(ready.stdout).toMatch(/^ready: connected to the bus, policy revision [0-9a-f]{12}\n$/);

    // A daemon that cannot reach its bus is alive but not ready.
    const port = await freePort();
    const lonely = await serve(['--servers', `nats://127.0.0.1:${port}`]);
    await lonely.d.waitForLog((l) => l.msg === 'HTTP listener ready');
    const notReady = await probe(['--self', '--json'], { SENTINEL_HTTP: lonely.http });
    expect(notReady.code).toBe(1);
    expect(JSON.parse(notReady.stdout)).toMatchObject({ ok: false, status: 'not ready', bus: { connected: false } });

    const none = await probe(['--self', '--http', `127.0.0.1:${await freePort()}`]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no sentinel daemon listening on 127\.0\.0\.1:\d+/);
  });

  it('reads servers and the HTTP address from the config file', async ({ server, root, probe, serve, settled }) => {
    const { http } = await serve(['--servers', server.url]);
    await settled();
    const config = path.join(root, 'sentinel.toml');
    writeFileSync(config, `servers = ["${server.url}"]\n[http]\nlisten = "${http}"\n`);
    expect((await probe(['--self', '--config', config])).code).toBe(0);
    // Asked over the bus the config file names (a probe that missed it would find no bus on the default
    // address, and exit 1 saying so): the settled sentinel, its own whole roster, answers healthy.
    const viaBus = await probe([], { SENTINEL_CONFIG: config });
    expect(viaBus.stderr).toBe('');
    expect(viaBus.code).toBe(0);
    expect(viaBus.stdout).toMatch(/^nachos: healthy \(every required component is healthy\)\n/);
  });
});

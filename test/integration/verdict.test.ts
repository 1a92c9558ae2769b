import { createServer, type Server } from 'node:http';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect } from 'vitest';
import type { HealthStatusPayload } from '../../src/health/status-payload.js';
import { SUBJECTS } from '../../src/protocol/topics.js';
import { Daemon } from '../helpers/daemon.js';
import { test, type Flags } from '../helpers/fixtures.js';
import { policyText } from '../helpers/policy-files.js';
import { until } from '../helpers/until.js';

/** This file's helpers: a sentinel at 200 ms, the view asked on the bus, and the probe. */
const it = test
  .extend('listener', async ({ listen }) => listen([]))
  .extend('start', async ({ dir, sentinel }) => async (flags: Flags, policies = dir) => {
    const running = await sentinel({ policies, interval: '200ms', ...flags });
    await running.connected();
    return running;
  })
  .extend('status', async ({ listener }) => async () => (await listener.nc.request(SUBJECTS.healthStatus, '', { timeout: 2000 })).json<{ payload: HealthStatusPayload }>().payload)
  .extend('probe', async ({ server }) => (...args: string[]) => Daemon.run(['--once', '--servers', server.url, ...args]));

/** One verdict whoever answers, and reasons a person can read. */
describe('the verdict and its reasons', () => {
  it('fails the probe when the sentinel itself holds no valid policy: it is on its own roster', async ({ root, start, status, probe }) => {
    const empty = path.join(root, 'empty');
    mkdirSync(empty);
    await start({}, empty);
    await until(async () => (await status()).status === 'unhealthy', 5000, 'unhealthy');
    const r = await probe();
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^nachos: unhealthy \(required sentinel is unhealthy \(failing policy: no valid policy snapshot in force yet; policy_files: the files on disk were rejected/);
    // Not "1 of 1 on revision none", as if that were convergence.
    expect(r.stdout).toContain('policy: no policy revision in force yet');
    expect((await status()).roster.required).toEqual(['sentinel']);
  });

  it('says so in every answer when live sentinels disagree on the roster, and fails --strict alike from either', async ({ start, status, probe }) => {
    const a = await start({ require: 'gateway', component: 'sentinel' });
    const b = await start({ require: ['gateway', 'llm'], component: 'sentinel' });
    await until(() => [a, b].every((s) => s.sentinel.monitor.aggregator.rosterDisagreement && s.sentinel.monitor.aggregator.overall !== 'unknown'), 5000, 'both past their first interval, disagreeing');
    const verdicts = new Set<string>();
    for (let i = 0; i < 8; i++) {
      const view = await status();
      expect(view.rosters?.sentinels).toHaveLength(2);
      expect(view.reason).toMatch(/sentinels disagree on the roster \(sentinel\/test-\w+ requires [a-z, ]+; sentinel\/test-\w+ requires [a-z, ]+\)/);
      expect(view.reason).toContain(`sentinel/${a.sentinel.instance} requires gateway, sentinel`);
      expect(view.reason).toContain(`sentinel/${b.sentinel.instance} requires gateway, llm, sentinel`);
      verdicts.add(view.status);
      const r = await probe('--strict');
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/sentinels disagree on the roster: /);
    }
    // Without the components both are unhealthy; the point is that both answers say the same.
    expect(verdicts.size).toBe(1);
    expect(a.lines.filter((l) => String(l.msg).startsWith('sentinels disagree on the roster'))).toHaveLength(1);
    const metrics = await (await fetch(`http://127.0.0.1:${a.sentinel.httpAddress?.port}/metrics`)).text();
    expect(metrics).toMatch(/^nachos_sentinel_roster_disagreement 1$/m);
  });

  it('shows why a check fails, in status --json, the table, /status.json and the log line of the transition', async ({ server, root, defer, start, status }) => {
    let code = 200;
    const gateway: Server = createServer((_req, res) => res.writeHead(code).end());
    await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
    defer(() => new Promise((resolve) => gateway.close(resolve)));
    const port = (gateway.address() as { port: number }).port;
    const config = path.join(root, 'sentinel.toml');
    writeFileSync(config, `[[health.checks]]\nname = "gateway_http"\ntype = "http"\nurl = "http://127.0.0.1:${port}/health"\n`);
    const running = await start({ config });
    await until(async () => (await status()).status === 'healthy', 5000, 'healthy');
    code = 503;
    await until(async () => (await status()).status === 'unhealthy', 5000, 'unhealthy');
    const view = await status();
    const sentinel = view.components.find((c) => c.name === 'sentinel');
    expect(sentinel?.instances[0]?.details).toEqual({ gateway_http: { message: 'HTTP 503, expected 200' } });
    expect(sentinel?.reason).toBe('1 of 1 unhealthy, failing gateway_http: HTTP 503, expected 200');
    expect(view.reason).toBe('required sentinel is unhealthy (failing gateway_http: HTTP 503, expected 200)');
    const json = JSON.parse((await Daemon.run(['status', '--json', '--servers', server.url])).stdout) as HealthStatusPayload;
    expect(json.components.find((c) => c.name === 'sentinel')?.instances[0]?.details).toEqual({ gateway_http: { message: 'HTTP 503, expected 200' } });
    const table = (await Daemon.run(['status', '--servers', server.url])).stdout;
    expect(table).toMatch(/failing checks:\n {2}sentinel\/test-\w+ gateway_http: HTTP 503, expected 200/);
    const page = (await (await fetch(`http://127.0.0.1:${running.sentinel.httpAddress?.port}/status.json`)).json()) as { health: HealthStatusPayload };
    expect(page.health.components.find((c) => c.name === 'sentinel')?.reason).toContain('HTTP 503, expected 200');
    // The overall transition is logged with its reason: a warning when worse, news when it recovers.
    const worse = running.lines.find((l) => String(l.msg).startsWith('health: overall healthy -> unhealthy'));
    expect(worse).toMatchObject({ level: 40, msg: 'health: overall healthy -> unhealthy: required sentinel is unhealthy (failing gateway_http: HTTP 503, expected 200)' });
    code = 200;
    await until(() => running.lines.find((l) => String(l.msg).startsWith('health: overall unhealthy -> healthy')), 5000, 'the recovery');
    expect(running.lines.find((l) => String(l.msg).startsWith('health: overall unhealthy -> healthy'))).toMatchObject({ level: 30 });
  });

  it('answers a malformed status or policy.current request with an ADR-32 400, counted, and an empty one in full', async ({ dir, listener, start, beater }) => {
    writeFileSync(path.join(dir, 'b.toml'), policyText('b1'));
    const running = await start({});
    await beater('gateway', 'g1');
    for (const subject of [SUBJECTS.healthStatus, SUBJECTS.policyCurrent]) {
      for (const bad of ['not json', '[1,2]', '"x"', ...(subject === SUBJECTS.healthStatus ? ['{"component": 5}'] : [])]) {
        const reply = await listener.nc.request(subject, bad, { timeout: 2000 });
        expect(reply.headers?.get('Nats-Service-Error-Code'), `${subject} ${bad}`).toBe('400');
        expect(reply.headers?.get('Nats-Service-Error'), `${subject} ${bad}`).toBeTruthy();
        expect(reply.data.byteLength).toBe(0);
      }
    }
    const stats = (await listener.nc.request('$SRV.STATS.nachos-sentinel', '', { timeout: 2000 })).json<{ endpoints: { name: string; num_errors: number }[] }>();
    expect(stats.endpoints.find((e) => e.name === 'health-status')?.num_errors).toBe(4);
    expect(stats.endpoints.find((e) => e.name === 'policy-current')?.num_errors).toBe(3);

    // An empty status request: the whole view, every component (not one asked for), nothing cut to fit.
    const view = await until(
      async () => {
        const reply = await listener.nc.request(SUBJECTS.healthStatus, '', { timeout: 2000 });
        expect(reply.headers?.get('Nats-Service-Error-Code')).toBeUndefined();
        const payload = reply.json<{ payload: HealthStatusPayload }>().payload;
        return payload.components.some((c) => c.name === 'gateway') ? payload : undefined;
      },
      5000,
      'a view with the gateway in it',
      50,
    );
    const own = running.sentinel.monitor.statusPayload();
    expect(Object.keys(view).sort()).toEqual(Object.keys(own).sort());
    expect(view.components.map((c) => c.name).sort()).toEqual(['gateway', 'sentinel']);
    expect(view.components.find((c) => c.name === 'sentinel')?.instances.map((i) => i.instance)).toEqual([running.sentinel.instance]);
    expect(view).toMatchObject({ schemaVersion: 1, sentinel: { component: 'sentinel', instance: running.sentinel.instance }, roster: own.roster, tracked: 2 });
    expect(view.truncated).toBeUndefined();
    expect(view.omitted).toBeUndefined();

    // An empty policy.current request: the set in force, every file with its bytes, not a head to fetch a body with.
    const current = await listener.nc.request(SUBJECTS.policyCurrent, '', { timeout: 2000 });
    expect(current.headers?.get('Nats-Service-Error-Code')).toBeUndefined();
    const policy = current.json<{ payload: { revision: string; transfer?: unknown; counts: { files: number }; files: { path: string; content?: string }[] } }>().payload;
    const inForce = running.sentinel.reloader.inForce;
    expect(policy.revision).toBe(inForce?.revision);
    expect(policy.transfer).toBeUndefined();
    expect(policy.counts.files).toBe(2);
    expect(policy.files.map((f) => [f.path, f.content])).toEqual([
      ['a.toml', readFileSync(path.join(dir, 'a.toml'), 'utf8')],
      ['b.toml', readFileSync(path.join(dir, 'b.toml'), 'utf8')],
    ]);
  });

  it('correlates a reply by the request\'s correlationId, as Nachos\' own bus client matches it, else by its id', async ({ listener, start }) => {
    await start({});
    const request = (extra: object) => JSON.stringify({ id: 'req-1', timestamp: new Date().toISOString(), source: 'gateway', type: 't', payload: {}, ...extra });
    for (const subject of [SUBJECTS.healthStatus, SUBJECTS.policyCurrent]) {
      const withCorrelation = await listener.nc.request(subject, request({ correlationId: 'conv-9' }), { timeout: 2000 });
      expect(withCorrelation.json<{ correlationId: string }>().correlationId).toBe('conv-9');
      const withId = await listener.nc.request(subject, request({}), { timeout: 2000 });
      expect(withId.json<{ correlationId: string }>().correlationId).toBe('req-1');
    }
  });
});

import { createServer, type Server } from 'node:http';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Svcm } from '@nats-io/services';
import { describe, expect } from 'vitest';
import type { HealthStatusPayload } from '../../src/health/status-payload.js';
import type { Transition } from '../../src/health/aggregator.js';
import type { SentinelHeartbeat } from '../../src/health/heartbeat-payload.js';
import { SUBJECTS } from '../../src/protocol/topics.js';
import type { BusListener } from '../helpers/bus-listener.js';
import { test, type Flags } from '../helpers/fixtures.js';
import { freePort } from '../helpers/nats-server.js';
import { policyText } from '../helpers/policy-files.js';
import { shellRevision } from '../helpers/revision.js';
import { quietFor, until } from '../helpers/until.js';

const H = 200;

/** Asks the health view on the bus, through `listener`'s connection. */
async function askStatus(listener: BusListener, component?: string) {
  const body = component ? JSON.stringify({ component }) : '';
  const reply = await listener.nc.request(SUBJECTS.healthStatus, body, { timeout: 2000 });
  return reply.json<{ payload: HealthStatusPayload }>().payload;
}

/**
 * How late this process's timers ran, at worst, while it is watched: the sentinel runs in this process, so
 * its sweep and heartbeat timers can be no more punctual than these. A bound the sentinel promises with
 * its timers on time is checked with this added, so a busy machine does not fail it, and a sweep that
 * stopped, or a wrong deadline, still does.
 */
function timerLateness(periodMs = 5) {
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - periodMs);
    last = now;
  }, periodMs);
  return {
    /** The worst lateness seen so far, in ms (one period more: a delay may fall just before a tick). */
    get worst() {
      return worst + periodMs;
    },
    stop: () => clearInterval(timer),
  };
}

/** This file's helpers: heartbeats and transitions heard, the view asked, and a sentinel at H = 200 ms. */
const it = test
  .extend('listener', async ({ listen }) => listen([SUBJECTS.health, SUBJECTS.healthChanged]))
  .extend('start', async ({ server, dir, sentinel }) => async (flags: Flags = {}, url = server.url) => {
    const running = await sentinel({ servers: url, policies: dir, interval: `${H}ms`, ...flags });
    await running.connected();
    return running;
  })
  .extend('status', async ({ listener }) => (component?: string) => askStatus(listener, component))
  .extend('transitions', async ({ listener }) => () => listener.on(SUBJECTS.healthChanged).map((e) => e.payload as unknown as Transition))
  .extend('heartbeats', async ({ listener }) => () => listener.on(SUBJECTS.health).map((e) => e.payload as unknown as SentinelHeartbeat));

describe('health: heartbeats, aggregation, status', () => {
  it('publishes its heartbeat at once, then every interval, with the whole payload', async ({ listener, start, heartbeats, defer }) => {
    const lateness = timerLateness();
    defer(lateness.stop);
    const running = await start({ component: 'sentinel-a' });
    await until(() => heartbeats().filter((h) => h.component === 'sentinel-a' && h.state === 'running').length >= 8, 5000, 'eight heartbeats while running');
    lateness.stop();
    const beats = heartbeats().filter((h) => h.component === 'sentinel-a');
    // Published when, on the sentinel's own clock (the envelope's timestamp).
    const at = listener
      .on(SUBJECTS.health)
      .filter((e) => e.source === 'sentinel-a')
      .map((e) => Date.parse(e.timestamp));
    // At once: the first heartbeat goes out as the sentinel joins the bus (in the same handler as the line that
    // says so), not with the first turn of its timer, which comes 0.9 to 1.1 intervals after it started.
    const joined = running.lines.find((l) => l.msg === 'connected to the bus')?.time as number;
    expect(beats[0]?.seq).toBe(1);
    expect(at[0]! - joined).toBeGreaterThanOrEqual(0);
    expect(at[0]! - joined).toBeLessThan(H / 2);
    // `starting` until the first round of checks is done; they are quick here, and may finish before the bus is up.
    expect(['starting', 'running']).toContain(beats[0]?.state);
    // Then every interval: once the checks have run (the first `running` heartbeat may be that change, said at
    // once), each heartbeat follows the one before by one interval, give or take its 10% jitter, plus the time
    // this process was kept from running (its timers' worst lateness), and ±1 ms of the timestamps' precision.
    const firstRunning = beats.findIndex((h) => h.state === 'running');
    const timed = at.slice(firstRunning + 1);
    expect(timed.length).toBeGreaterThanOrEqual(7);
    const gaps = timed.slice(1).map((t, i) => t - timed[i]!);
    for (const gap of gaps) {
      expect(gap).toBeGreaterThanOrEqual(0.9 * H - 2);
      expect(gap).toBeLessThanOrEqual(1.1 * H + 2 + lateness.worst);
    }
    expect(beats.at(-1)).toMatchObject({
      schemaVersion: 1,
      status: 'healthy',
      component: 'sentinel-a',
      instance: running.sentinel.heartbeat.payload().instance,
      intervalMs: H,
      state: 'running',
      checks: { bus: 'ok', policy: 'ok', policy_files: 'ok', event_loop: 'ok' },
      policy: { revision: running.sentinel.reloader.inForce?.revision },
      details: { bus: { required: true }, event_loop: { required: false } },
    });
    expect(typeof beats.at(-1)?.uptime).toBe('number');
    expect(typeof beats.at(-1)?.version).toBe('string');
    const seqs = beats.map((b) => b.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(listener.on(SUBJECTS.health)[0]).toMatchObject({ type: 'system.health', source: 'sentinel-a' });

    await running.close();
    const last = await until(
      () => heartbeats().filter((h) => h.component === 'sentinel-a' && h.state === 'stopping').at(-1),
      3000,
      'the last heartbeat',
    );
    expect(heartbeats().filter((h) => h.component === 'sentinel-a').at(-1)).toEqual(last);
  });

  it('runs the container checks, cuts a stuck one off, and publishes a status change at once', async ({ root, defer, listener, start, heartbeats }) => {
    let answer = 200;
    const http: Server = createServer((_req, res) => res.writeHead(answer).end());
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
    defer(() => new Promise((r) => http.close(r)));
    const port = (http.address() as { port: number }).port;
    const closedPort = await freePort();
    const config = path.join(root, 'sentinel.toml');
    writeFileSync(
      config,
      `[[health.checks]]
name = "web"
type = "http"
url = "http://127.0.0.1:${port}/health"
timeout = "500ms"

[[health.checks]]
name = "cache"
type = "tcp"
address = "127.0.0.1:${closedPort}"
required = false

[[health.checks]]
name = "stuck"
type = "command"
command = ["sleep", "30"]
timeout = "300ms"
required = false
`,
    );
    await start({ config, interval: '10s' });
    // With H = 10 s, what arrives within 3 s was published because something changed (a margin a busy machine keeps).
    const latest = () => heartbeats().at(-1);
    // The stuck check holds the first round for 300 ms: the first heartbeat says so.
    expect((await until(() => heartbeats()[0], 3000, 'the first heartbeat')).state).toBe('starting');
    await until(() => latest()?.state === 'running', 5000, 'the first round of checks');
    expect(latest()).toMatchObject({
      status: 'degraded',
      checks: { web: 'ok', cache: 'error', stuck: 'error' },
      details: { stuck: { message: 'timeout after 300ms', required: false } },
    });
    expect(latest()?.details.cache?.message).toMatch(/ECONNREFUSED/);

    answer = 503;
    const before = heartbeats().length;
    // Checks run on each turn (every 10 s); the turn's own heartbeat still carries the old results,
    // and the change goes out as soon as the check has run, not a whole interval later.
    await until(() => heartbeats().slice(before).some((h) => h.status === 'unhealthy'), 15_000, 'the unhealthy heartbeat');
    const arrivals = listener.messages.filter((m) => m.subject === SUBJECTS.health);
    const index = arrivals.findIndex((m, i) => i >= before && (m.envelope.payload as { status: string }).status === 'unhealthy');
    expect((arrivals[index]?.at ?? 0) - (arrivals[index - 1]?.at ?? 0)).toBeLessThan(3000);
    expect(heartbeats().at(-1)).toMatchObject({ checks: { web: 'error' }, details: { web: { message: 'HTTP 503, expected 200' } } });
  });

  it('judges the roster: required missing is unhealthy, optional missing is degraded', async ({ beater, start, status }) => {
    await start({ require: 'gateway,sentinel', optional: 'slack' });
    await until(async () => (await status()).status !== 'unknown', 3000, 'the first interval to pass');
    let view = await status();
    expect(view).toMatchObject({ status: 'unhealthy', missing: ['gateway'], roster: { required: ['gateway', 'sentinel'], optional: ['slack'] } });

    await beater('gateway', 'g1');
    await until(async () => (await status()).status === 'degraded', 3000, 'degraded');
    view = await status();
    expect(view.reason).toBe('optional slack is missing (has not reported)');
    expect(view.components.find((c) => c.name === 'gateway')).toMatchObject({ role: 'required', status: 'healthy' });

    await beater('slack', 's1');
    await until(async () => (await status()).status === 'healthy', 3000, 'healthy');

    // Outside the roster: tracked and shown; only unhealthy counts, and as degraded.
    const tool = await beater('tool-browser', 't1');
    tool.status = 'unhealthy';
    await until(async () => (await status()).status === 'degraded', 3000, 'degraded by an unhealthy extra');
    expect((await status('tool-browser')).components).toMatchObject([{ name: 'tool-browser', role: 'observed', status: 'unhealthy' }]);
  });

  it('suspects a silent instance after 1.5 intervals and calls it stale within 2.5 intervals + 0.5 s of its last heartbeat, on its own clock', async ({ listener, beater, start, transitions, defer }) => {
    await start({ require: 'gateway' });
    const g = await beater('gateway', 'g1');
    await until(() => transitions().some((t) => t.scope === 'overall' && t.to === 'healthy'), 3000, 'healthy');
    const lateness = timerLateness();
    defer(lateness.stop);
    await g.crash();
    await until(() => transitions().some((t) => t.instance === 'g1' && t.to === 'stale'), 3000, 'stale');
    lateness.stop();
    const moves = transitions().filter((t) => t.instance === 'g1');
    expect(moves.map((t) => [t.from, t.to, t.reason])).toEqual([
      [null, 'healthy', 'join'],
      ['healthy', 'suspect', 'silent'],
      ['suspect', 'stale', 'stale'],
    ]);
    // Measured from the last heartbeat g1 actually sent (every one it sent was heard on the bus): the sentinel
    // heard that one, not an earlier one, since it heard it after it was sent.
    const sent = listener.on(SUBJECTS.health).filter((e) => e.payload.instance === 'g1');
    expect(sent).toHaveLength(g.sent);
    const lastSent = Date.parse(sent.at(-1)?.timestamp ?? '');
    expect(Date.parse(moves[2]?.lastSeenAt ?? '')).toBeGreaterThanOrEqual(lastSent);
    expect(moves[1]?.lastSeenAt).toBe(moves[2]?.lastSeenAt);
    // On the sentinel's own clock: from hearing it to finding it silent.
    const after = (t: Transition | undefined) => Date.parse(t?.detectedAt ?? '') - Date.parse(t?.lastSeenAt ?? '');
    expect(after(moves[1])).toBeGreaterThanOrEqual(1.5 * H);
    expect(after(moves[2])).toBeGreaterThanOrEqual(2.5 * H + 300);
    // Within 2.5 intervals + 0.5 s: the promise, for a sentinel whose timers run on time; the time this process
    // was kept from running (a busy machine) is added, not a fixed slack.
    expect(after(moves[2])).toBeLessThanOrEqual(2.5 * H + 500 + lateness.worst);
    expect(transitions().filter((t) => t.scope === 'overall').map((t) => t.to)).toEqual(['healthy', 'degraded', 'unhealthy']);
  });

  it('takes a new instance of a component as a restart, and a clean leave as a leave', async ({ beater, start, transitions }) => {
    await start({ require: 'gateway' });
    const g1 = await beater('gateway', 'g1');
    await until(() => transitions().some((t) => t.scope === 'overall' && t.to === 'healthy'), 3000, 'healthy');
    await g1.crash();
    await beater('gateway', 'g2');
    await until(() => transitions().some((t) => t.instance === 'g1' && t.to === 'gone'), 3000, 'g1 retired');
    expect(transitions().find((t) => t.instance === 'g2')).toMatchObject({ from: null, to: 'healthy', reason: 'restart' });
    expect(transitions().filter((t) => t.instance === 'g1').map((t) => [t.to, t.reason])).toEqual([
      ['healthy', 'join'],
      ['gone', 'restart'],
    ]);
    expect(transitions().filter((t) => t.component === 'gateway' && t.scope === 'component').map((t) => t.to)).toEqual(['healthy']);

    const tool = await beater('tool', 't1');
    await until(() => transitions().some((t) => t.instance === 't1'), 3000, 't1 joined');
    const sentAt = Date.now();
    await tool.leave();
    const left = await until(() => transitions().find((t) => t.instance === 't1' && t.to === 'gone'), 3000, 't1 left');
    expect(left).toMatchObject({ from: 'healthy', reason: 'leave' });
    // Before silence could even make it suspect (1.5 intervals): it was the goodbye that did it.
    expect(Date.parse(left.detectedAt) - sentAt).toBeLessThan(1.5 * H);
    await quietFor(3 * H);
    expect(transitions().filter((t) => t.instance === 't1' && (t.to === 'suspect' || t.to === 'stale'))).toEqual([]);
  });

  it('publishes each transition exactly once', async ({ beater, start, transitions }) => {
    await start({ require: 'gateway' });
    const a = await beater('gateway', 'a');
    const b = await beater('gateway', 'b');
    await quietFor(2 * H);
    b.status = 'degraded';
    await quietFor(2 * H);
    b.status = 'healthy';
    await a.crash();
    await quietFor(4 * H);
    await b.leave();
    await quietFor(2 * H);
    const seen = new Map<string, string>();
    for (const t of transitions()) {
      const subject = `${t.scope}/${t.component}/${t.instance}`;
      expect(t.from).not.toBe(t.to);
      const previous = seen.get(subject);
      if (previous !== undefined) expect(t.from).toBe(previous === 'gone' ? null : previous);
      seen.set(subject, t.to);
    }
    expect(transitions().filter((t) => t.instance === 'b').map((t) => t.to)).toEqual(['healthy', 'degraded', 'healthy', 'gone']);
  });

  it('raises no false stale when its own bus goes away and comes back', async ({ server, beater, start, status, transitions }) => {
    await start({ require: 'gateway' });
    await beater('gateway', 'g1');
    await beater('llm', 'l1');
    await until(() => transitions().some((t) => t.scope === 'overall' && t.to === 'healthy'), 3000, 'healthy');
    const before = transitions().length;

    await server.kill();
    await quietFor(10 * H); // five stale periods without a bus
    await server.spawn();
    const view = await until(() => status().catch(() => undefined), 10_000, 'a status answer after the restart');
    expect(['unknown', 'healthy']).toContain(view.status);
    await quietFor(4 * H);
    expect((await status()).status).toBe('healthy');
    const during = transitions().slice(before);
    expect(during.filter((t) => t.to === 'suspect' || t.to === 'stale')).toEqual([]);
  });

  it('answers each status request once, with two sentinel replicas', async ({ listener, start, status }) => {
    const one = await start({ component: 'sentinel' });
    const two = await start({ component: 'sentinel' });
    await until(async () => (await status()).components.find((c) => c.name === 'sentinel')?.instances.length === 2, 3000, 'both replicas');
    const replies: number[] = [];
    for (let i = 0; i < 20; i++) {
      // Collect every answer for a while: a second replica answering would show up here.
      const it = await listener.nc.requestMany(SUBJECTS.healthStatus, '', { maxWait: 150 });
      let n = 0;
      for await (const _ of it) n++;
      replies.push(n);
    }
    expect(replies).toEqual(Array(20).fill(1));
    const stats = await listener.nc.requestMany('$SRV.STATS.nachos-sentinel', '', { maxWait: 300 });
    const served: number[] = [];
    for await (const m of stats) {
      const body = m.json<{ type: string; endpoints: { name: string; num_requests: number }[] }>();
      expect(body.type).toBe('io.nats.micro.v1.stats_response');
      served.push(body.endpoints.find((e) => e.name === 'health-status')?.num_requests ?? -1);
    }
    expect(served).toHaveLength(2);
    expect(served.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(20);
    expect(one.sentinel.service.id).not.toBe(two.sentinel.service.id);
  });

  it('registers as a NATS micro service that standard tooling discovers', async ({ listener, start }) => {
    const running = await start();
    const ask = async (subject: string) => (await listener.nc.request(subject, '', { timeout: 1000 })).json<Record<string, unknown>>();
    const id = running.sentinel.service.id;
    expect(await ask('$SRV.PING')).toMatchObject({ type: 'io.nats.micro.v1.ping_response', name: 'nachos-sentinel', id });
    expect(await ask(`$SRV.PING.nachos-sentinel.${id}`)).toMatchObject({ id });
    const info = await ask('$SRV.INFO.nachos-sentinel');
    expect(info).toMatchObject({
      type: 'io.nats.micro.v1.info_response',
      description: expect.any(String),
      endpoints: [
        { name: 'health-status', subject: 'nachos.system.health.status', queue_group: 'nachos-sentinel' },
        { name: 'policy-current', subject: 'nachos.system.policy.current', queue_group: 'nachos-sentinel' },
        { name: 'policy-transfer', subject: `nachos.system.policy.transfer.${running.sentinel.instance}`, queue_group: 'nachos-sentinel' },
        // An operator's requests reach every central sentinel: no queue group.
        { name: 'policy-rollback', subject: 'nachos.system.policy.rollback' },
        { name: 'policy-promote', subject: 'nachos.system.policy.promote' },
        { name: 'policy-abort', subject: 'nachos.system.policy.abort' },
      ],
    });
    expect((info.endpoints as Record<string, unknown>[]).slice(3).every((e) => !('queue_group' in e))).toBe(true);
    expect(info.version).toMatch(/^\d+\.\d+\.\d+/);
    const stats = await ask('$SRV.STATS');
    expect(stats).toMatchObject({ type: 'io.nats.micro.v1.stats_response', started: expect.any(String) });

    // The official client of the NATS services API (what `nats micro` speaks) finds it too.
    const client = new Svcm(listener.nc as unknown as ConstructorParameters<typeof Svcm>[0]).client({ maxWait: 500, strategy: 'timer' } as never);
    const collect = async <T>(it: AsyncIterable<T>) => {
      const out: T[] = [];
      for await (const x of it) out.push(x);
      return out;
    };
    expect(await collect(await client.ping('nachos-sentinel'))).toMatchObject([{ name: 'nachos-sentinel', id }]);
    const [official] = await collect(await client.info('nachos-sentinel'));
    expect(official?.endpoints.map((e) => e.name)).toEqual(['health-status', 'policy-current', 'policy-transfer', 'policy-rollback', 'policy-promote', 'policy-abort']);
    await listener.nc.request(SUBJECTS.healthStatus, '', { timeout: 1000 });
    const [counted] = await collect(await client.stats('nachos-sentinel', id));
    expect(counted?.endpoints?.find((e) => e.name === 'health-status')?.num_requests).toBeGreaterThanOrEqual(1);
  });

  it('says a new policy revision, or a rejected set, in its own heartbeat at once', async ({ dir, listener, start, heartbeats }) => {
    const running = await start({ interval: '10s' });
    await until(() => heartbeats().at(-1)?.state === 'running', 5000, 'the first round of checks');
    // With H = 10 s, a heartbeat within 3 s of the change was sent because of it (a margin a busy machine keeps).
    writeFileSync(path.join(dir, 'b.toml'), policyText('b1'));
    const changedAt = performance.now();
    await until(() => running.sentinel.reloader.inForce?.revision === shellRevision(dir), 3000, 'the change in force');
    const revised = await until(
      () => listener.messages.find((m) => m.subject === SUBJECTS.health && (m.envelope.payload as unknown as SentinelHeartbeat).policy.revision === shellRevision(dir)),
      3000,
      'a heartbeat with the new revision',
    );
    expect(revised.at - changedAt).toBeLessThan(3000);

    writeFileSync(path.join(dir, 'c.toml'), 'not = [valid');
    const brokenAt = performance.now();
    const degraded = await until(
      () => listener.messages.find((m) => m.subject === SUBJECTS.health && m.at > brokenAt && (m.envelope.payload as unknown as SentinelHeartbeat).status === 'degraded'),
      3000,
      'a degraded heartbeat',
    );
    expect(degraded.at - brokenAt).toBeLessThan(3000);
    expect(degraded.envelope.payload).toMatchObject({ checks: { policy_files: 'error' } });
  });

  it('shows policy convergence: who runs the revision in force and who lags', async ({ beater, start, status }) => {
    const running = await start();
    const revision = running.sentinel.reloader.inForce?.revision as string;
    const fresh = await beater('gateway', 'g1');
    fresh.policyRevision = revision;
    const old = await beater('gateway', 'g2');
    old.policyRevision = 'f'.repeat(64);
    await until(async () => (await status()).policy.reporting === 3, 3000, 'three reporting instances');
    let policy = (await status()).policy;
    expect(policy).toMatchObject({ revision, onRevision: 2, converged: false });
    expect(policy.behind).toMatchObject([{ component: 'gateway', instance: 'g2', revision: 'f'.repeat(64) }]);
    expect(policy.summary).toMatch(new RegExp(`^2 of 3 on revision ${revision.slice(0, 12)}, gateway/g2 behind for \\d+`));
    old.policyRevision = revision;
    await until(async () => (await status()).policy.converged, 3000, 'convergence');
    policy = (await status()).policy;
    expect(policy.lastConvergence).toMatchObject({ revision, tookMs: expect.any(Number) });
  });

  it('keeps memory bounded and keeps answering under a flood of hostile heartbeats', async ({ listen, startServer, start }) => {
    // A server of its own: megabyte heartbeats need a larger max_payload.
    const server = await startServer({ config: 'max_payload: 2097152\n' });
    const listener = await listen([], server.url);
    const status = (component?: string) => askStatus(listener, component);
    // A 5 s interval: in this process the flood blocks the sentinel's loop for seconds, and at 200 ms its
    // own silence would be judged before its queued heartbeats are read (a pause, not this test's subject).
    const running = await start({ 'max-instances': '10000', interval: '5s', 'log-level': 'info' }, server.url);
    // The sentinel's own heartbeat first: it must hold its place before the flood arrives.
    await until(() => running.sentinel.monitor.aggregator.trackedCount === 1, 5000, 'the sentinel to hear itself');
    const nc = listener.nc;
    const envelope = (payload: unknown) => JSON.stringify({ id: 'x', timestamp: 't', source: 's', type: 'system.health', payload });
    const garbage = ['not json', '{"id":1}', '[]', 'null', envelope({ status: 'great', component: 'x' }), envelope({ status: 'healthy', component: 5 })];
    for (let i = 0; i < 3000; i++) nc.publish(SUBJECTS.health, garbage[i % garbage.length] as string);
    nc.publish(SUBJECTS.health, Buffer.from([0xff, 0xfe, 0xfd]));
    const huge = 'x'.repeat(1024 * 1024);
    for (let i = 0; i < 20; i++) nc.publish(SUBJECTS.health, envelope({ status: 'healthy', component: 'big', details: huge }));
    await nc.flush();
    // What the heap holds, not the garbage a flood leaves for the collector: collect before each reading.
    v8.setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    for (let i = 0; i < 100_000; i++) {
      nc.publish(SUBJECTS.health, envelope({ status: 'healthy', component: `flood-${i}`, instance: 'i', intervalMs: 60_000 }));
      if (i % 5000 === 0) await nc.flush();
    }
    await nc.flush();
    await until(() => running.sentinel.monitor.counters.received >= 103_021, 60_000, 'every message to be read');
    const view = await status('nobody');
    expect(view.tracked).toBe(10_000);
    expect(view.ingest).toMatchObject({
      // The sentinel's own instance holds one of the 10,000 places, and keeps it: it is on the roster.
      // The flood makes room for itself from itself, least recently heard first; nothing is refused.
      refused: 0,
      evicted: 90_001,
      rejected: { oversized: 20, json: 500, envelope: 1500, payload: 1000, encoding: 1 },
    });
    // The sentinel runs in this process: its heap holds 10,000 instances, not 100,000 or the megabyte payloads.
    gc();
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(60 * 1024 * 1024);
  }, 120_000);
});

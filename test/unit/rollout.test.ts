import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Announcement } from '../../src/bus/policy-announcer.js';
import { HealthAggregator } from '../../src/health/aggregator.js';
import type { Heartbeat } from '../../src/health/heartbeat-payload.js';
import { LocalHistoryStore } from '../../src/history/local-store.js';
import type { HistoryStore } from '../../src/history/store.js';
import type { ReloadReason, RolloutEvent } from '../../src/policy/announcements.js';
import { buildSnapshot, type Snapshot } from '../../src/policy/snapshot.js';
import { RETRY_FOR } from '../../src/history/retry.js';
import { Rollout, RolloutRefusal } from '../../src/rollout/rollout.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { policyText } from '../helpers/policy-files.js';
import { tempDir } from '../helpers/temp-dir.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function set(...ids: string[]): Snapshot {
  const built = buildSnapshot([{ path: 'a.toml', kind: 'policy', content: Buffer.from(policyText(...ids)) }], [], { allowEmpty: false });
  if (!built.ok) throw new Error('invalid');
  return built.snapshot;
}

const CANARY = 'gateway-canary';
const H = 1000;

/** A statement the fake announcer made. */
interface Stated {
  to: 'everyone' | 'canary';
  revision: string | undefined;
  reason?: ReloadReason;
  replaces?: string | undefined;
  excludes?: readonly string[] | undefined;
}

/**
 * A rollout over a real aggregator (fed heartbeats) and a real local history, on a fake clock; the
 * announcer records what it was told to state, and "publishes" it at once, as a connected one does.
 */
async function harness(options: { canary?: string[]; bakeMs?: number; dir?: string; failAppends?: () => boolean; slowRead?: Promise<void> } = {}) {
  const clock = new FakeClock();
  const dir = options.dir ?? path.join(tempDir('rollout-').dir, 'state');
  const local = await LocalHistoryStore.open({ dir });
  // A store that refuses appends while `failAppends` says so (a leader being elected, a full disk).
  // Or one slow to read the rollout state (a JetStream cluster electing its leaders).
  const history: HistoryStore =
    options.failAppends || options.slowRead
      ? Object.assign(Object.create(local) as HistoryStore, {
          append: (...args: Parameters<HistoryStore['append']>) => (options.failAppends?.() ? Promise.reject(new Error('timeout')) : local.append(...args)),
          readRollout: async () => {
            await options.slowRead;
            return local.readRollout();
          },
        })
      : local;
  const aggregator = new HealthAggregator({ clock, intervalMs: H, required: [], optional: [], maxInstances: 100, onTransition: () => undefined });
  aggregator.setConnected(true);
  const stated: Stated[] = [];
  const events: RolloutEvent[] = [];
  let rollout: Rollout;
  const publish = (revision: string, audience?: readonly string[]) => {
    const message = Buffer.from(JSON.stringify({ id: 'x', type: 'system.policy.reload', payload: { revision, signature: { key: 'K' } } }));
    const a: Announcement = { subject: 'nachos.system.policy.reload', revision, bytes: message.byteLength, message, ...(audience ? { audience } : {}) };
    rollout.published(a);
  };
  rollout = new Rollout({
    announcer: {
      announce: (snapshot, reason, scope = {}) => {
        stated.push({ to: 'everyone', revision: snapshot.revision, reason, replaces: scope.replaces, excludes: scope.excludes });
        publish(snapshot.revision);
      },
      announceCanary: (snapshot, audience) => {
        stated.push({ to: 'canary', revision: snapshot?.revision });
        if (snapshot) publish(snapshot.revision, audience);
      },
    },
    history,
    canary: options.canary ?? [],
    bakeMs: options.bakeMs ?? 5000,
    build: { allowEmpty: false },
    instances: () => aggregator.instances(),
    required: [],
    clock,
    log: pino({ level: 'silent' }),
    by: 'sentinel/test',
    signer: 'UKEY',
  });
  rollout.on('event', (e) => events.push(e));
  if (!options.slowRead) await rollout.start();
  const seqs = new Map<string, number>();
  /** One heartbeat of an instance, as a sidecar sends it. */
  const beat = (component: string, instance: string, hb: Partial<Heartbeat> = {}) => {
    const key = `${component}/${instance}`;
    seqs.set(key, (seqs.get(key) ?? 0) + 1);
    aggregator.ingest({ status: 'healthy', component, instance, intervalMs: H, seq: seqs.get(key), state: 'running', ...hb } as Heartbeat);
  };
  /** Time passes, the aggregator sweeps, and everyone given keeps beating. */
  const pass = async (ms: number, beating: (() => void)[] = []) => {
    for (let t = 0; t < ms; t += 100) {
      clock.advance(100);
      if (t % 500 === 0) for (const b of beating) b();
      aggregator.tick();
    }
    await rollout.flushed();
  };
  /** Lets queued work (the rollout's serial queue) run. */
  const settle = async () => {
    for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
    await rollout.flushed();
  };
  cleanups.push(async () => {
    rollout.close();
    await rollout.flushed();
    await history.close();
  });
  return { rollout, history, aggregator, stated, events, beat, pass, settle, clock, dir };
}

/** Fake time passes in 50 ms steps, each after a real moment (the store's file I/O is real), until `done` holds or `ms` passed. */
async function run(clock: FakeClock, ms: number, done: () => boolean | Promise<boolean> = () => false): Promise<void> {
  for (let t = 0; t < ms && !(await done()); t += 50) {
    await new Promise((resolve) => setTimeout(resolve, 2));
    clock.advance(50);
  }
}

describe('the history when a write fails', () => {
  it('tries a failed write again until it is recorded, once, in order with the writes after it', async () => {
    let failures = 3;
    const h = await harness({ failAppends: () => failures-- > 0 });
    const one = set('a1');
    const two = set('a2');
    h.rollout.sourceAccepted(one);
    await run(h.clock, 1000, () => h.stated.length === 1);
    h.rollout.sourceAccepted(two);
    await run(h.clock, 10_000, async () => (await h.history.index()).length === 2);
    await h.rollout.flushed();
    expect((await h.history.list(10)).map((e) => [e.n, e.revision])).toEqual([
      [2, two.revision],
      [1, one.revision],
    ]);
    expect(h.rollout.historyFailures).toBe(0);
  });

  it('gives up on a write after a minute, counts it, and records the next one once the store is back', async () => {
    let down = true;
    const h = await harness({ failAppends: () => down });
    const one = set('a1');
    h.rollout.sourceAccepted(one);
    await run(h.clock, RETRY_FOR - 6000);
    expect(h.rollout.historyFailures).toBe(0);
    await run(h.clock, 10_000, () => h.rollout.historyFailures === 1);
    await h.rollout.flushed();
    expect(h.rollout.historyFailures).toBe(1);
    down = false;
    const two = set('a2');
    h.rollout.sourceAccepted(two);
    await h.settle();
    expect((await h.history.list(10)).map((e) => e.revision)).toEqual([two.revision]);
  });

  it('stops trying when the sentinel stops: its shutdown does not wait out the retries', async () => {
    const h = await harness({ failAppends: () => true });
    h.rollout.sourceAccepted(set('a1'));
    await run(h.clock, 1000);
    h.rollout.close();
    await h.rollout.flushed();
    expect(h.rollout.historyFailures).toBe(1);
  });
});

describe('a first set that is no longer the directory\'s', () => {
  it('is passed over when the directory changed while the history was read: the newer one is first, never a step back', async () => {
    const dir = path.join(tempDir('rollout-').dir, 'state');
    const one = set('a1');
    const two = set('a1', 'a2');
    // Another replica recorded both sets while this one was starting.
    const other = await harness({ dir: `${dir}-shared` });
    other.rollout.sourceAccepted(one);
    await other.settle();
    other.rollout.sourceAccepted(two);
    await other.settle();
    other.rollout.close();
    await other.rollout.flushed();
    await other.history.close();
    let release = () => undefined as void;
    const h = await harness({ dir: `${dir}-shared`, slowRead: new Promise<void>((resolve) => (release = resolve)) });
    // This replica read the directory before the change, and again after it, while its history was slow.
    h.rollout.sourceAccepted(one);
    h.rollout.sourceAccepted(two);
    release();
    await h.settle();
    expect(h.stated).toEqual([{ to: 'everyone', revision: two.revision, reason: 'startup', replaces: undefined, excludes: undefined }]);
    expect((await h.history.list(10)).map((e) => e.revision)).toEqual([two.revision, one.revision]);
  });
});

describe('the rollout without a canary', () => {
  it('puts each new set in force for everyone, and records each with its announcement and what changed', async () => {
    const h = await harness();
    const one = set('a1', 'a2');
    const two = set('a1', 'a3');
    h.rollout.sourceAccepted(one);
    await h.settle();
    h.rollout.sourceAccepted(two);
    await h.settle();
    expect(h.stated).toEqual([
      { to: 'everyone', revision: one.revision, reason: 'startup', replaces: undefined, excludes: undefined },
      { to: 'everyone', revision: two.revision, reason: 'change', replaces: undefined, excludes: undefined },
    ]);
    const [newest, first] = await h.history.list(10);
    expect(first).toMatchObject({ n: 1, kind: 'accepted', revision: one.revision, previous: null, audience: null, signer: 'UKEY', by: 'sentinel/test' });
    expect(newest).toMatchObject({ n: 2, kind: 'accepted', revision: two.revision, previous: one.revision, rules: { added: ['a3'], removed: ['a2'], changed: [] }, changed: { modified: ['a.toml'] } });
    expect(newest?.announcement).toMatchObject({ payload: { revision: two.revision, signature: { key: 'K' } } });
    expect(h.rollout.view()).toMatchObject({ revision: two.revision, source: two.revision, rolledBack: null, canary: null, verdict: 'complete' });
  });

  it('rolls back to an earlier set until the directory changes, and the next change wins', async () => {
    const h = await harness();
    const one = set('a1');
    const two = set('a2');
    const three = set('a3');
    h.rollout.sourceAccepted(one);
    await h.settle();
    h.rollout.sourceAccepted(two);
    await h.settle();
    const done = await h.rollout.rollback('#1', 'the LLM is denied to everyone', 'req-1');
    expect(done).toMatchObject({ revision: one.revision, replaces: two.revision });
    expect(h.stated.at(-1)).toEqual({ to: 'everyone', revision: one.revision, reason: 'rollback', replaces: two.revision, excludes: undefined });
    await h.settle();
    expect(await h.history.readRollout()).toMatchObject({ pin: { revision: one.revision, replaces: two.revision, sourceRevision: two.revision, note: 'the LLM is denied to everyone' } });
    expect((await h.history.list(1))[0]).toMatchObject({ kind: 'rollback', revision: one.revision, replaces: two.revision, note: 'the LLM is denied to everyone' });
    expect(h.rollout.view().summary).toMatch(new RegExp(`^rolled back to ${one.revision.slice(0, 12)}; the source directory holds ${two.revision.slice(0, 12)}`));
    expect(h.events.at(-1)).toMatchObject({ event: 'rollback', revision: one.revision, previous: two.revision });
    // What cannot be done is refused, saying why.
    await expect(h.rollout.rollback(one.revision.slice(0, 8), undefined, 'req-2')).rejects.toMatchObject({ code: 409, message: expect.stringContaining('already in force') });
    await expect(h.rollout.rollback('#9', undefined, 'req-3')).rejects.toBeInstanceOf(RolloutRefusal);
    // The directory changes: the rollback is over, and the new set is in force.
    h.rollout.sourceAccepted(three);
    await h.settle();
    expect(h.stated.at(-1)).toEqual({ to: 'everyone', revision: three.revision, reason: 'change', replaces: undefined, excludes: undefined });
    expect(await h.history.readRollout()).toEqual({});
    expect((await h.history.list(1))[0]).toMatchObject({ kind: 'accepted', revision: three.revision, note: expect.stringContaining('the rollback to') });
  });

  it('keeps a rollback across a restart while the directory holds the same set, and ends it when it does not', async () => {
    const first = await harness();
    const one = set('a1');
    const two = set('a2');
    first.rollout.sourceAccepted(one);
    await first.settle();
    first.rollout.sourceAccepted(two);
    await first.settle();
    await first.rollout.rollback('#1', undefined, 'req-1');
    await first.settle();
    first.rollout.close();
    await first.history.close();

    const again = await harness({ dir: first.dir });
    again.rollout.sourceAccepted(two);
    await again.settle();
    expect(again.stated).toEqual([{ to: 'everyone', revision: one.revision, reason: 'startup', replaces: two.revision, excludes: undefined }]);
    expect(again.rollout.pin?.revision).toBe(one.revision);
    // --release: back to the directory's set.
    await again.rollout.releaseRollback('fixed', 'req-2');
    expect(again.stated.at(-1)).toMatchObject({ revision: two.revision, replaces: undefined });
    await again.settle();
    again.rollout.close();
    await again.history.close();

    // Rolled back again, then the directory changed while the sentinel was down: the rollback is over.
    const third = await harness({ dir: first.dir });
    third.rollout.sourceAccepted(two);
    await third.settle();
    await third.rollout.rollback(one.revision.slice(0, 9), undefined, 'req-3');
    await third.settle();
    third.rollout.close();
    await third.history.close();
    const fourth = await harness({ dir: first.dir });
    const three = set('a3');
    fourth.rollout.sourceAccepted(three);
    await fourth.settle();
    expect(fourth.stated).toEqual([{ to: 'everyone', revision: three.revision, reason: 'startup', replaces: undefined, excludes: undefined }]);
    expect((await fourth.history.list(1))[0]).toMatchObject({ kind: 'accepted', revision: three.revision, previous: one.revision });
  });
});

describe('the rollout with a canary', () => {
  async function started(bakeMs = 2000) {
    const h = await harness({ canary: [CANARY], bakeMs });
    const one = set('a1');
    h.rollout.sourceAccepted(one);
    await h.settle();
    h.beat(CANARY, 'c1', { policy: { revision: one.revision } });
    h.beat('gateway', 'g1', { policy: { revision: one.revision } });
    return { ...h, one };
  }

  it('gives a new set to the canaries first, and to everyone once every canary held its health for the bake', async () => {
    const h = await started(2000);
    const two = set('a2');
    h.rollout.sourceAccepted(two);
    await h.settle();
    // Everyone else keeps the set in force, stated so that it excludes the canaries; the canaries get the new one.
    expect(h.stated.slice(1)).toEqual([
      { to: 'everyone', revision: h.one.revision, reason: 'refresh', replaces: undefined, excludes: [CANARY] },
      { to: 'canary', revision: two.revision },
    ]);
    expect(h.rollout.view()).toMatchObject({ verdict: 'progressing', canary: { phase: 'delivering', revision: two.revision, audience: [CANARY] } });
    const canaryOn = (rev: string) => () => h.beat(CANARY, 'c1', { policy: { revision: rev } });
    const gatewayOn = () => h.beat('gateway', 'g1', { policy: { revision: h.one.revision } });
    await h.pass(600, [canaryOn(h.one.revision), gatewayOn]);
    expect(h.rollout.view().canary?.phase).toBe('delivering');
    // The canary delivers: the bake starts.
    await h.pass(400, [canaryOn(two.revision), gatewayOn]);
    expect(h.rollout.view().canary).toMatchObject({ phase: 'baking', delivered: 1, members: 1 });
    expect(h.stated.filter((s) => s.to === 'everyone' && s.revision === two.revision)).toEqual([]);
    await h.pass(2500, [canaryOn(two.revision), gatewayOn]);
    expect(h.stated.at(-2)).toEqual({ to: 'canary', revision: undefined });
    expect(h.stated.at(-1)).toEqual({ to: 'everyone', revision: two.revision, reason: 'change', replaces: undefined, excludes: undefined });
    expect(h.events.map((e) => e.event)).toEqual(['canary', 'baking', 'released']);
    expect((await h.history.list(3)).map((e) => [e.kind, e.audience])).toEqual([
      ['released', null],
      ['accepted', [CANARY]],
      ['accepted', null],
    ]);
  });

  it('halts when a canary gets worse after delivery: the canaries get the previous set back, nobody else ever gets the new one', async () => {
    const h = await started(5000);
    const two = set('a2');
    h.rollout.sourceAccepted(two);
    await h.settle();
    const gatewayOn = () => h.beat('gateway', 'g1', { policy: { revision: h.one.revision } });
    await h.pass(500, [() => h.beat(CANARY, 'c1', { policy: { revision: two.revision } }), gatewayOn]);
    expect(h.rollout.view().canary?.phase).toBe('baking');
    // 4 s into the bake, the gateway beside the canary turns unhealthy.
    await h.pass(4000, [() => h.beat(CANARY, 'c1', { policy: { revision: two.revision } }), gatewayOn]);
    h.beat(CANARY, 'c1', { status: 'unhealthy', policy: { revision: two.revision }, checks: { 'gateway-canary': 'error' }, details: { 'gateway-canary': { required: true, message: 'llm error' } } });
    await h.pass(300);
    const halted = h.events.at(-1);
    expect(halted).toMatchObject({ event: 'halted', revision: two.revision, previous: h.one.revision, audience: [CANARY] });
    expect(halted?.message).toMatch(new RegExp(`^halted: gateway-canary/c1 unhealthy [45] s after delivery of ${two.revision.slice(0, 12)}: llm error; the canaries are given ${h.one.revision.slice(0, 12)} back$`));
    // The previous set, stated anew for everyone (the canaries take it: newer than theirs), saying what it replaces.
    expect(h.stated.at(-1)).toEqual({ to: 'everyone', revision: h.one.revision, reason: 'rollback', replaces: two.revision, excludes: undefined });
    expect(h.stated.some((s) => s.to === 'everyone' && s.revision === two.revision)).toBe(false);
    expect(h.rollout.view()).toMatchObject({ verdict: 'failed', canary: { phase: 'halted', note: expect.stringContaining('llm error') } });
    expect(await h.history.readRollout()).toMatchObject({ halted: { revision: two.revision, previous: h.one.revision } });
    // Promoted by hand after all: everyone gets it.
    await h.rollout.promote('looked at it: the check was wrong');
    expect(h.stated.at(-1)).toMatchObject({ to: 'everyone', revision: two.revision, reason: 'change', replaces: undefined });
    expect(h.events.at(-1)).toMatchObject({ event: 'promoted', revision: two.revision });
  });

  it('halts when a canary cannot take the set, and when a canary goes silent after delivery', async () => {
    const failing = await started();
    const two = set('a2');
    failing.rollout.sourceAccepted(two);
    await failing.settle();
    failing.beat(CANARY, 'c1', { policy: { revision: failing.one.revision, failure: { revision: two.revision, error: 'could not write the set into /policies: EACCES' } } });
    await failing.pass(300);
    expect(failing.events.at(-1)?.message).toMatch(/^halted: gateway-canary\/c1 could not take .*: could not write the set into \/policies: EACCES/);

    const silent = await started(10_000);
    silent.rollout.sourceAccepted(two);
    await silent.settle();
    await silent.pass(500, [() => silent.beat(CANARY, 'c1', { policy: { revision: two.revision } })]);
    expect(silent.rollout.view().canary?.phase).toBe('baking');
    await silent.pass(4000);
    expect(silent.events.at(-1)).toMatchObject({ event: 'halted' });
    expect(silent.events.at(-1)?.message).toMatch(/gateway-canary\/c1 stale \d+ s after delivery/);
  });

  it('aborts by hand, and refuses what does not fit', async () => {
    const h = await started();
    await expect(h.rollout.abort(undefined)).rejects.toMatchObject({ code: 409, message: 'no canary is running' });
    await expect(h.rollout.promote(undefined)).rejects.toMatchObject({ code: 409 });
    const two = set('a2');
    h.rollout.sourceAccepted(two);
    await h.settle();
    await h.rollout.abort('not today');
    expect(h.events.at(-1)).toMatchObject({ event: 'aborted', message: expect.stringContaining('aborted by hand: not today') });
    expect(h.stated.at(-1)).toMatchObject({ to: 'everyone', revision: h.one.revision, replaces: two.revision });
    // A new set in the directory starts a new canary: the halt is over.
    const three = set('a3');
    h.rollout.sourceAccepted(three);
    await h.settle();
    expect(h.stated.at(-1)).toEqual({ to: 'canary', revision: three.revision });
    expect(await h.history.readRollout()).toEqual({});
  });

  it('a rollback during a canary ends it: the rolled-back set goes to everyone, canaries included', async () => {
    const h = await started();
    const two = set('a2');
    h.rollout.sourceAccepted(two);
    await h.settle();
    await h.rollout.rollback('#1', undefined, 'r');
    expect(h.stated.slice(-2)).toEqual([
      { to: 'canary', revision: undefined },
      { to: 'everyone', revision: h.one.revision, reason: 'rollback', replaces: two.revision, excludes: undefined },
    ]);
    expect(h.rollout.view()).toMatchObject({ canary: null, rolledBack: { revision: h.one.revision, replaces: two.revision, source: two.revision } });
  });
});

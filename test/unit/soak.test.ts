import { describe, expect, it } from 'vitest';
import { HealthAggregator, STALE_AFTER_INTERVALS, STALE_MARGIN, type Transition } from '../../src/health/aggregator.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { prng } from '../helpers/prng.js';

describe('soak: 10 simulated minutes, 1,000 publishers, jitter, loss and restarts', () => {
  it('calls stale only what really went silent past the bound, and holds memory flat', () => {
    const H = 5000; // the default interval
    const PUBLISHERS = 1000;
    const END = 10 * 60_000;
    const LOSS = 0.01;
    const random = prng(Number(process.env.SOAK_SEED ?? 7));
    const clock = new FakeClock();
    const transitions: Transition[] = [];
    const agg = new HealthAggregator({ clock, intervalMs: H, required: [], optional: [], maxInstances: 10_000, onTransition: (t) => transitions.push(t) });
    agg.setConnected(true);

    type Event = { at: number; component: string; instance: string; state: 'running' | 'stopping'; seq: number };
    const events: Event[] = [];
    const staleBound = STALE_AFTER_INTERVALS * H + STALE_MARGIN;
    // Per instance, whether the heartbeats that do arrive ever leave a gap past the bound (then stale is right).
    const reallySilent = new Set<string>();
    const mustGoStale = new Set<string>();
    let restarts = 0;
    let lost = 0;
    for (let p = 0; p < PUBLISHERS; p++) {
      const component = `svc-${p % 100}`;
      let t = random() * H;
      let generation = 0;
      // Each publisher restarts twice, at random moments, after 1 to 3 s down; half the time it says goodbye.
      const restartAt = [random() * END, random() * END].sort((a, b) => a - b);
      let lastArrival = t;
      let seq = 0;
      let predecessor: { instance: string; lastArrival: number } | undefined;
      while (t < END) {
        const instance = `p${p}-g${generation}`;
        const next = restartAt[0];
        if (next !== undefined && t >= next) {
          restartAt.shift();
          const left = random() < 0.5;
          if (left) {
            events.push({ at: t, component, instance, state: 'stopping', seq: ++seq });
            if (t - lastArrival > staleBound) reallySilent.add(instance);
          }
          // A crash is silent until the successor is heard: if that takes past the bound, stale is right.
          if (!left) predecessor = { instance, lastArrival };
          generation++;
          restarts++;
          t += 1000 + random() * 2000;
          seq = 0;
          continue;
        }
        // The sentinel's own jitter (±10%) on the interval, then up to 0.5 s on the way, and 1% lost.
        const arrival = t + random() * 500;
        if (random() < LOSS) {
          lost++;
        } else {
          events.push({ at: arrival, component, instance, state: 'running', seq: ++seq });
          if (seq > 1 && arrival - lastArrival > staleBound) {
            reallySilent.add(instance);
            // Past the bound by more than the 0.1 s sweep: it must have been called stale.
            if (arrival - lastArrival > staleBound + 200) mustGoStale.add(instance);
          }
          if (predecessor && arrival - predecessor.lastArrival > staleBound) reallySilent.add(predecessor.instance);
          predecessor = undefined;
          lastArrival = arrival;
        }
        t += H * (0.9 + 0.2 * random());
      }
    }
    events.sort((a, b) => a.at - b.at);

    let next = 0;
    const trackedAt: number[] = [];
    for (let now = 0; now <= END; now += 100) {
      clock.advance(100);
      while (next < events.length && (events[next] as Event).at <= clock.now()) {
        const e = events[next++] as Event;
        agg.ingest({ status: 'healthy', component: e.component, instance: e.instance, intervalMs: H, state: e.state, seq: e.seq });
      }
      agg.tick();
      if (now % 60_000 === 0) trackedAt.push(agg.trackedCount);
    }

    const stale = transitions.filter((t) => t.to === 'stale');
    const falseStale = stale.filter((t) => !reallySilent.has(t.instance ?? ''));
    // A false stale names a publisher that was never silent past the bound; SOAK_SEED replays a run.
    expect(falseStale).toEqual([]);
    // And silence is not missed: every heartbeat gap well past the bound was called stale.
    expect(mustGoStale.size).toBeGreaterThan(0); // two heartbeats lost in a row happen, at 1,000 publishers
    const calledStale = new Set(stale.map((t) => t.instance));
    expect([...mustGoStale].filter((i) => !calledStale.has(i))).toEqual([]);
    // Restarts end as restarts or leaves, never failures; only what was really silent is forgotten as expired;
    // and nothing retired as restarted is heard again (a replica taken for a restarted one would be).
    const gone = transitions.filter((t) => t.to === 'gone');
    expect(gone.every((t) => ['restart', 'leave', 'expired'].includes(t.reason))).toBe(true);
    expect(gone.filter((t) => t.reason === 'expired').every((t) => reallySilent.has(t.instance ?? ''))).toBe(true);
    const goneAt = new Map(gone.map((t) => [t.instance, t.detectedAt]));
    const heardAgain = transitions.filter((t) => t.scope === 'instance' && t.from === null && (goneAt.get(t.instance) ?? '~') < t.detectedAt);
    expect(heardAgain).toEqual([]);
    // Every restart ends its old instance once: a leave, a retirement, or (past the bound) stale, then forgotten.
    expect(gone.length).toBeGreaterThan(restarts * 0.95);
    // Memory flat: one live instance per publisher, every minute after the first.
    // (a restart in progress holds its old and new instance for a moment)
    for (const count of trackedAt.slice(1)) expect(count).toBeLessThanOrEqual(PUBLISHERS * 1.01);
    expect(Math.abs(agg.trackedCount - PUBLISHERS)).toBeLessThanOrEqual(PUBLISHERS * 0.01);
    expect(lost).toBeGreaterThan(500);
    expect(restarts).toBeGreaterThan(1.9 * PUBLISHERS);
  });
});

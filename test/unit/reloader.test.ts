import { createHash } from 'node:crypto';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { LoadResult } from '../../src/policy/load.js';
import { HOT_DEFER_FACTOR, PolicyReloader, type ApplyContext, type ApplyOutcome, type ReloaderOptions } from '../../src/reload/reloader.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { policyText } from '../helpers/policy-files.js';

/**
 * The reload engine on a fake clock, with its loader and its open-writers
 * check handed in: the quiet window's cap, the deferral of files still being
 * written, and the folding of reruns, each tested without a filesystem or a
 * sleep. (The same behaviours end to end: reload.test.ts, torture.test.ts.)
 */

const QUIET = 50;
const MAX_WAIT = 1000;

/** A disk the test writes to: each read returns what is there now, stamped with when it was last written. */
class FakeDisk {
  files = new Map<string, string>();
  writtenAt = 0;
  /** While set, a read waits for this before it returns (a read in flight). */
  gate: Promise<void> | undefined;
  /** The next read finds a file changed while it was read. */
  unstableOnce = false;
  reads = 0;
  openForWriting = new Map<string, number>();

  constructor(private readonly clock: FakeClock) {}

  write(name: string, text: string): void {
    this.files.set(name, text);
    this.writtenAt = this.clock.wallNow();
  }

  /** Whether a read sees the disk when it ends (a slow read), rather than when it starts. */
  readsLate = false;

  /** What is on disk when the read starts (or ends: readsLate); it returns once the gate (if any) opens. */
  load = async (): Promise<LoadResult> => {
    this.reads++;
    const unstable = this.unstableOnce;
    this.unstableOnce = false;
    const look = () => ({ sources: [...this.files].map(([path, text]) => ({ path, kind: 'policy' as const, content: Buffer.from(text) })), newestMtimeMs: this.writtenAt });
    let seen = look();
    await this.gate;
    if (this.readsLate) seen = look();
    return { ...seen, problems: [], dirMissing: false, unstable };
  };

  /** When each open-writers scan started. */
  scans: number[] = [];
  openWriters = async (): Promise<Map<string, number>> => {
    this.scans.push(this.clock.now());
    return new Map(this.openForWriting);
  };
}

function setup(overrides: Partial<ReloaderOptions> = {}) {
  const clock = new FakeClock();
  const disk = new FakeDisk(clock);
  disk.write('a.toml', policyText('a1'));
  const reloader = new PolicyReloader({
    dir: '/policies',
    extraFiles: [],
    maxFileBytes: 1024 * 1024,
    allowEmpty: false,
    strictKeys: false,
    // These tests are of the reload mechanics, on TOML files: a bus consumer reads them all.
    consumer: 'bus',
    strictConsumer: false,
    invalidFiles: 'reject-set',
    quietWindowMs: QUIET,
    maxWaitMs: MAX_WAIT,
    rescanIntervalMs: 0,
    dirCheckIntervalMs: 1000,
    clock,
    log: pino({ level: 'silent' }),
    load: disk.load,
    openWriters: disk.openWriters,
    ...overrides,
  });
  const applies: { at: number; outcome: ApplyOutcome; context: ApplyContext }[] = [];
  reloader.on('applied', (outcome, context) => applies.push({ at: clock.now(), outcome, context }));
  /** Moves the clock in steps, letting each read the timers start run to its end. */
  const advance = async (ms: number, step = 10) => {
    for (let t = 0; t < ms; t += step) {
      clock.advance(Math.min(step, ms - t));
      await settle();
    }
  };
  return { clock, disk, reloader, applies, advance };
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Lets every read in flight finish (the fake loader resolves on the microtask queue). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('the reloader, on a fake clock', () => {
  it('reads a burst of chunks once, a quiet window after the last one', async () => {
    const { disk, reloader, applies, advance } = setup();
    await reloader.start();
    for (let i = 0; i < 10; i++) {
      disk.write('a.toml', policyText('a1', `chunk${i}`));
      reloader.dirty('change', 'a.toml');
      await advance(5, 1);
    }
    expect(applies.map((a) => a.outcome)).toEqual(['accepted']);
    await advance(QUIET + 20, 1);
    expect(applies.slice(1)).toEqual([{ at: 45 + QUIET, outcome: 'accepted', context: expect.objectContaining({ trigger: 'watch', events: 10, capped: false, firstEventAt: 0 }) }]);
    expect(disk.reads).toBe(2);
  });

  it('reads a writer that never pauses at the cap, but puts off a file written within the quiet window, up to 4 x max_wait', async () => {
    const { disk, reloader, applies, advance } = setup();
    await reloader.start();
    let i = 0;
    // A write every 10 ms for 8 s: never a quiet window.
    for (let t = 0; t < 8000; t += 10) {
      disk.write('a.toml', policyText('a1', `w${i++}`));
      reloader.dirty('change', 'a.toml');
      await advance(10);
    }
    const reads = applies.slice(1);
    // The first read comes at the cap, and finds the file hot: put off, not announced half-written.
    expect(reads[0]).toMatchObject({ at: MAX_WAIT, outcome: 'unstable', context: { capped: true } });
    // Put off again at every cap until 4 x max_wait have passed since the first: then read, hot or not.
    const firstAccepted = reads.find((r) => r.outcome === 'accepted');
    expect(firstAccepted?.at).toBeGreaterThanOrEqual(MAX_WAIT + HOT_DEFER_FACTOR * MAX_WAIT);
    expect(firstAccepted?.at).toBeLessThanOrEqual(MAX_WAIT + HOT_DEFER_FACTOR * MAX_WAIT + MAX_WAIT);
    expect(reads.filter((r) => r.at < (firstAccepted?.at ?? 0)).every((r) => r.outcome === 'unstable')).toBe(true);
    // The events of the reads put off are carried into the read that is made, not lost.
    expect(firstAccepted?.context.events).toBeGreaterThan(400);
  });

  it('reads a file put off as hot as soon as its writer pauses for a quiet window', async () => {
    const { disk, reloader, applies, advance } = setup();
    await reloader.start();
    for (let t = 0; t < 1500; t += 10) {
      disk.write('a.toml', policyText('a1', `w${t}`));
      reloader.dirty('change', 'a.toml');
      await advance(10);
    }
    expect(applies.slice(1).map((a) => a.outcome)).toEqual(['unstable']);
    await advance(QUIET + 20);
    // The last write was at 1490 ms.
    expect(applies.at(-1)).toMatchObject({ at: 1490 + QUIET, outcome: 'accepted', context: { capped: false } });
    expect(applies.at(-1)?.context.firstEventAt).toBe(0);
  });

  it('waits for a writer that holds a file open, however quiet, and reads it once it is closed (or after 4 x max_wait)', async () => {
    const { disk, reloader, applies, advance } = setup();
    await reloader.start();
    disk.write('a.toml', policyText('a1', 'half'));
    disk.openForWriting.set('a.toml', 4242);
    reloader.dirty('change', 'a.toml');
    await advance(2000);
    expect(applies.slice(1).every((a) => a.outcome === 'unstable')).toBe(true);
    expect(applies.length).toBeGreaterThan(2);
    disk.write('a.toml', policyText('a1', 'whole'));
    disk.openForWriting.clear();
    await advance(QUIET + 20);
    expect(applies.at(-1)?.outcome).toBe('accepted');
    expect(reloader.inForce?.ruleCount).toBe(2);

    // A writer that never closes is read anyway, 4 x max_wait after the first read put off.
    disk.write('b.toml', policyText('b1'));
    disk.openForWriting.set('b.toml', 4343);
    const before = applies.length;
    reloader.dirty('change', 'b.toml');
    await advance(HOT_DEFER_FACTOR * MAX_WAIT + 500);
    const after = applies.slice(before);
    expect(after.at(-1)?.outcome).toBe('accepted');
    expect((after.at(-1)?.at ?? 0) - (after[0]?.at ?? 0)).toBeGreaterThanOrEqual(HOT_DEFER_FACTOR * MAX_WAIT);
  });

  it('puts off a read after a quiet window when a writer started again while the set was read', async () => {
    const { clock, disk, reloader, applies, advance } = setup();
    await reloader.start();
    disk.write('a.toml', policyText('a1', 'a2'));
    reloader.dirty('change', 'a.toml');
    // The window fires after 50 quiet ms; the read is slow, and a writer opens the file again meanwhile.
    let open!: () => void;
    disk.gate = new Promise((resolve) => (open = resolve));
    disk.readsLate = true;
    await advance(QUIET, 1);
    expect(disk.reads).toBe(2);
    clock.advance(5);
    disk.write('a.toml', policyText('a1', 'a2', 'half')); // what the read finds: written after the quiet window fired
    open();
    disk.gate = undefined;
    await settle();
    expect(applies.at(-1)?.outcome).toBe('unstable');
    // The writer finishes; the read after the next quiet window takes the whole file.
    disk.write('a.toml', policyText('a1', 'a2', 'whole'));
    reloader.dirty('change', 'a.toml');
    await advance(QUIET + 10);
    expect(applies.at(-1)?.outcome).toBe('accepted');
    expect(reloader.inForce?.files[0]?.sha256).toBe(sha256(policyText('a1', 'a2', 'whole')));
  });

  it('scans for open writers half a quiet window after the last event, so the read does not wait for the scan', async () => {
    const { disk, reloader, applies, advance } = setup();
    await reloader.start();
    for (let i = 0; i < 3; i++) {
      disk.write('a.toml', policyText('a1', `c${i}`));
      reloader.dirty('change', 'a.toml');
      await advance(10, 1);
    }
    // Events at 0, 10 and 20 ms: one scan, at 20 + 25 ms, used by the read at 20 + 50 ms.
    await advance(QUIET + 10, 1);
    expect(disk.scans).toEqual([20 + QUIET / 2]);
    expect(applies.at(-1)).toMatchObject({ at: 20 + QUIET, outcome: 'accepted' });
    // Events that never stop leave no time for an early scan: the read at the cap scans, itself, once.
    const start = applies.at(-1)?.at ?? 0;
    for (let t = 0; t < MAX_WAIT + 5; t += 10) {
      disk.write('a.toml', policyText('a1', `w${t}`));
      reloader.dirty('change', 'a.toml');
      await advance(10, 1);
    }
    expect(disk.scans.slice(1)).toHaveLength(1);
    expect(disk.scans[1]).toBeGreaterThanOrEqual(start + MAX_WAIT);
    expect(disk.scans[1]).toBeLessThanOrEqual(start + MAX_WAIT + 30);
  });

  it('folds every call made during a read into one more read, whatever their number', async () => {
    const { clock, disk, reloader, applies } = setup();
    await reloader.start();
    let open!: () => void;
    disk.gate = new Promise((resolve) => (open = resolve));
    disk.write('a.toml', policyText('a1', 'a2'));
    const first = reloader.apply({ trigger: 'signal', events: 0 });
    for (let i = 0; i < 20; i++) void reloader.apply({ trigger: 'rescan', events: 0 });
    void reloader.apply({ trigger: 'watch', events: 3 });
    void reloader.apply({ trigger: 'watch', events: 4 });
    expect(disk.reads).toBe(2); // the start's, and the one in flight
    disk.write('a.toml', policyText('a1', 'a2', 'a3'));
    clock.advance(QUIET + 1); // the read is slow: by its end, the last write is a quiet window old
    open();
    disk.gate = undefined;
    expect(await first).toBe('accepted');
    await settle();
    expect(disk.reads).toBe(3);
    // One follow-up: a watch read (a rescan gives way to what the events say) carrying all 7 events.
    // The read in flight found a2; the follow-up finds a3, written while the first was reading.
    expect(applies.slice(1).map((a) => [a.outcome, a.context.trigger, a.context.events])).toEqual([
      ['accepted', 'signal', 0],
      ['accepted', 'watch', 7],
    ]);
    expect(reloader.inForce?.ruleCount).toBe(3);
  });

  it('reads again, after the quiet window, a set a file changed in while it was read', async () => {
    const { disk, reloader, applies, advance } = setup();
    await reloader.start();
    disk.unstableOnce = true;
    disk.write('a.toml', policyText('a1', 'a2'));
    reloader.dirty('change', 'a.toml');
    await advance(QUIET + 10);
    expect(applies.at(-1)?.outcome).toBe('unstable');
    await advance(QUIET + 10);
    expect(applies.at(-1)).toMatchObject({ outcome: 'accepted', context: { trigger: 'watch', events: 1, firstEventAt: 0 } });
  });

  it('reads a Kubernetes swap at once, with the events still waiting for quiet', async () => {
    const { clock, disk, reloader, applies, advance } = setup();
    await reloader.start();
    disk.write('a.toml', policyText('a1', 'a2'));
    reloader.dirty('change', 'a.toml');
    await advance(20);
    reloader.dirty('swap', '..data');
    await settle();
    expect(applies.at(-1)).toMatchObject({ at: 20, outcome: 'accepted', context: { trigger: 'swap', events: 2, firstEventAt: 0 } });
    // The quiet window it replaced never fires.
    const count = applies.length;
    clock.advance(QUIET * 4);
    await settle();
    expect(applies).toHaveLength(count);
  });

  it('does not validate the same bytes twice: a touch is unchanged', async () => {
    const { disk, reloader, applies, advance } = setup();
    await reloader.start();
    disk.write('a.toml', policyText('a1')); // same bytes, new time
    reloader.dirty('change', 'a.toml');
    await advance(QUIET + 10);
    expect(applies.map((a) => a.outcome)).toEqual(['accepted', 'unchanged']);
  });
});

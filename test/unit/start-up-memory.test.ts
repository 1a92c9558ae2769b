import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_FLAGS, LEAN_FLAGS, leanUntilAnnounced } from '../../src/cli/start-up-memory.js';

/** Starts the lean start-up with a recorder in place of V8's flags. */
function start(nodeOptions: string[] = []) {
  const announcer = new EventEmitter();
  const set: string[] = [];
  let heartbeats = 0;
  leanUntilAnnounced(announcer, () => heartbeats, { setFlags: (flag) => set.push(flag), nodeOptions });
  return {
    announcer,
    set,
    beat: (n: number) => (heartbeats += n),
    restores: () => set.filter((f) => DEFAULT_FLAGS.includes(f)).length / DEFAULT_FLAGS.length,
  };
}

describe('lean start-up', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('starts lean and sets V8 back 5 s after the first announcement, once', async () => {
    const s = start();
    expect(s.set).toEqual(LEAN_FLAGS);
    await vi.advanceTimersByTimeAsync(2000);
    s.announcer.emit('published');
    await vi.advanceTimersByTimeAsync(4900);
    expect(s.restores()).toBe(0);
    await vi.advanceTimersByTimeAsync(200);
    expect(s.set).toEqual([...LEAN_FLAGS, ...DEFAULT_FLAGS]);
    // Neither a later announcement, nor a flood, nor the 30 s bound sets anything again.
    s.announcer.emit('published');
    s.beat(10_000);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(s.restores()).toBe(1);
  });

  it('sets V8 back at 30 s when nothing was announced (a bus that is down)', async () => {
    const s = start();
    await vi.advanceTimersByTimeAsync(29_900);
    expect(s.restores()).toBe(0);
    await vi.advanceTimersByTimeAsync(200);
    expect(s.restores()).toBe(1);
    s.announcer.emit('published');
    await vi.advanceTimersByTimeAsync(10_000);
    expect(s.restores()).toBe(1);
  });

  it('sets V8 back within 100 ms of the 2,000th heartbeat, before any announcement', async () => {
    const s = start();
    s.beat(1999);
    await vi.advanceTimersByTimeAsync(1000);
    expect(s.restores()).toBe(0);
    s.beat(1);
    await vi.advanceTimersByTimeAsync(100);
    expect(s.restores()).toBe(1);
    s.announcer.emit('published');
    await vi.advanceTimersByTimeAsync(40_000);
    expect(s.restores()).toBe(1);
  });

  it('leaves V8 alone where node was given one of these flags itself', async () => {
    for (const given of [['--no-turbofan'], ['--turbofan'], ['--max-old-space-size=200', '--semi_space_growth_factor=4']]) {
      const s = start(given);
      s.beat(5000);
      s.announcer.emit('published');
      await vi.advanceTimersByTimeAsync(60_000);
      expect(s.set).toEqual([]);
    }
    expect(start(['--max-old-space-size=200', '--enable-source-maps']).set).toEqual(LEAN_FLAGS);
  });

  it('uses flags this Node knows, and sets back what are its defaults (from node --v8-options)', () => {
    // Node refuses a flag V8 does not know ("bad option"), where setFlagsFromString would ignore it.
    const known = spawnSync(process.execPath, [...LEAN_FLAGS, ...DEFAULT_FLAGS, '-e', '0'], { encoding: 'utf8' });
    expect(known.stderr).toBe('');
    expect(known.status).toBe(0);
    const options = spawnSync(process.execPath, ['--v8-options'], { encoding: 'utf8' }).stdout;
    for (const flag of DEFAULT_FLAGS) {
      const name = flag.replace(/^--(no-)?/, '').replace(/=.*$/, '');
      const entry = new RegExp(`^  --${name} \\(.*\\n\\s+type: \\w+\\s+default: (\\S+)`, 'm').exec(options);
      expect(entry, `--${name} in node --v8-options`).not.toBeNull();
      expect(entry?.[1]).toBe(flag);
    }
  });
});

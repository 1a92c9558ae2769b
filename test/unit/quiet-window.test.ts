import { describe, expect, it } from 'vitest';
import { QuietWindow } from '../../src/watch/quiet-window.js';
import { FakeClock } from '../helpers/fake-clock.js';

function setup(quietMs = 50, maxWaitMs = 1000) {
  const clock = new FakeClock();
  const fired: { at: number; events: number; waitedMs: number; capped: boolean }[] = [];
  const window = new QuietWindow({ quietMs, maxWaitMs, clock, onFire: (b) => fired.push({ at: clock.now(), ...b }) });
  return { clock, fired, window };
}

describe('QuietWindow', () => {
  it('fires once, the quiet window after the last event of a burst', () => {
    const { clock, fired, window } = setup();
    for (let i = 0; i < 10; i++) {
      window.poke();
      clock.advance(5); // chunks 5 ms apart
    }
    expect(fired).toEqual([]);
    clock.advance(44);
    expect(fired).toEqual([]);
    clock.advance(1);
    expect(fired).toEqual([{ at: 95, events: 10, waitedMs: 95, capped: false }]);
    clock.advance(1000);
    expect(fired).toHaveLength(1);
  });

  it('is capped: a steady stream still fires every maxWait', () => {
    const { clock, fired, window } = setup(50, 1000);
    for (let t = 0; t < 3000; t += 20) {
      window.poke();
      clock.advance(20);
    }
    clock.advance(100);
    expect(fired.map((f) => f.at)).toEqual([1000, 2000, 3000]);
    expect(fired.every((f) => f.waitedMs <= 1000 && f.capped)).toBe(true);
  });

  it('starts a new burst after firing, and can be cancelled', () => {
    const { clock, fired, window } = setup();
    window.poke();
    clock.advance(50);
    window.poke();
    expect(window.pending).toBe(true);
    window.cancel();
    expect(window.pending).toBe(false);
    clock.advance(500);
    expect(fired).toHaveLength(1);
    expect(clock.pendingTimers).toBe(0);
  });

  it('can be restarted without counting an event (a read put off)', () => {
    const { clock, fired, window } = setup();
    window.poke(0);
    clock.advance(50);
    expect(fired).toEqual([{ at: 50, events: 0, waitedMs: 50, capped: false }]);
  });

  it('fires at once when the quiet window is zero', () => {
    const { clock, fired, window } = setup(0, 1000);
    window.poke();
    clock.advance(0);
    expect(fired).toHaveLength(1);
  });
});

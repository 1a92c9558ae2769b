import { once, type EventEmitter } from 'node:events';
import { setFlagsFromString } from 'node:v8';

/** V8's own default: the young generation doubles when a scavenge finds much of it alive. */
const DEFAULT_GROWTH = 2;
/** However long the first announcement takes (a bus that is down), the default is back after this. */
const AT_MOST_MS = 30_000;

/**
 * Keeps V8's young generation at its smallest while the daemon starts. Its
 * first read of a large set (1,000 files: read, parsed, validated, hashed,
 * encoded for the bus) is a burst of short-lived objects that grows the young
 * generation to 16 MB, which V8 keeps resident for the life of the process:
 * about 7 MB of the daemon's RSS on Node 20 and 10 MB on Node 24, measured
 * with bench/reload-latency.ts (d). Once the first set is announced, V8's
 * default is back, so a later flood of heartbeats grows it as it would have
 * (kept for the whole life, it cost about a sixth of heartbeat ingest).
 */
export function smallYoungGenerationUntilAnnounced(announcer: EventEmitter): void {
  setFlagsFromString('--semi-space-growth-factor=1');
  const restore = () => setFlagsFromString(`--semi-space-growth-factor=${DEFAULT_GROWTH}`);
  const timer = setTimeout(restore, AT_MOST_MS);
  timer.unref();
  void once(announcer, 'published').then(
    () => {
      clearTimeout(timer);
      restore();
    },
    () => undefined,
  );
}

import { once, type EventEmitter } from 'node:events';
import { setFlagsFromString } from 'node:v8';

/** However long the first announcement takes (a bus that is down), V8's defaults are back after this. */
const AT_MOST_MS = 30_000;
/** After the first announcement, what it set off (the history's first entry, the first heartbeats and status) settles in this. */
const SETTLE_MS = 5000;
/** Heartbeats taken in sooner than that: a flood, or a large fleet, which wants V8's optimizing compilers at once. */
const BUSY_HEARTBEATS = 2000;
/** Maglev, V8's mid-tier compiler, is on by default from V8 12 (Node 22); Node 20's V8 11 has it off. */
const MAGLEV_BY_DEFAULT = Number(process.versions.v8.split('.')[0]) >= 12;

/** What start-up runs with: a young generation that does not grow, no optimizing compiler. */
export const LEAN_FLAGS: readonly string[] = ['--semi-space-growth-factor=1', '--no-turbofan', ...(MAGLEV_BY_DEFAULT ? ['--no-maglev'] : [])];
/** V8's defaults for the same flags, set back after start-up (the suite checks them against `node --v8-options`). */
export const DEFAULT_FLAGS: readonly string[] = ['--semi-space-growth-factor=2', '--turbofan', ...(MAGLEV_BY_DEFAULT ? ['--maglev'] : [])];

/**
 * Holds V8 to its leanest while the daemon starts, until just after its
 * first announcement. The first read of a large set (1,000 files: read, parsed,
 * validated, hashed, encoded for the bus) is a burst that grows the young
 * generation to 16 MB and sends the hot parsing code to the optimizing
 * compilers, whose work memory stays with the process after they are done:
 * measured with bench/reload-latency.ts (d), 1,000 files, RSS from 78 to 70
 * MB on Node 20 and from 99 to 86 MB on Node 24, with the same time from start
 * to the first announcement (about 500 ms either way). Then V8's defaults are
 * back: a later flood of heartbeats grows the young generation and gets its
 * hot code optimized as it would have (held for the whole life, the small
 * young generation cost about a sixth of heartbeat ingest), 5 s after the
 * first announcement, once what it set off has settled, or as soon as 2,000
 * heartbeats have come in (a flood, or a fleet that large, is no start-up).
 */
export function leanUntilAnnounced(
  announcer: EventEmitter,
  heartbeatsReceived: () => number,
  options: { setFlags?: (flags: string) => void; nodeOptions?: readonly string[] } = {},
): void {
  const setFlags = options.setFlags ?? setFlagsFromString;
  // Whoever set one of these flags for node itself chose it for the whole life: left alone.
  const given = new Set((options.nodeOptions ?? nodeOptions()).map(flagName));
  if ([...LEAN_FLAGS, ...DEFAULT_FLAGS].some((flag) => given.has(flagName(flag)))) return;
  for (const flag of LEAN_FLAGS) setFlags(flag);
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    for (const flag of DEFAULT_FLAGS) setFlags(flag);
  };
  const timer = setTimeout(restore, AT_MOST_MS);
  timer.unref();
  // A flood of heartbeats (or a large fleet) ends it at once.
  const busy = setInterval(() => {
    if (heartbeatsReceived() >= BUSY_HEARTBEATS) restore();
    if (restored) clearInterval(busy);
  }, 100);
  busy.unref();
  void once(announcer, 'published').then(
    () => {
      clearTimeout(timer);
      setTimeout(restore, SETTLE_MS).unref();
    },
    () => undefined,
  );
}

/** The options node was started with: its command line and NODE_OPTIONS. */
function nodeOptions(): string[] {
  return [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean)];
}

/** A V8 flag's name, as `--no-turbofan`, `--turbofan` and `--semi_space_growth_factor=3` share it. */
function flagName(flag: string): string {
  return flag.replace(/^--(no-)?/, '').replace(/=.*$/, '').replaceAll('_', '-');
}

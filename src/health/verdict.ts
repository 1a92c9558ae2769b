import { describeRosters, failingChecks, unknownWhy, type RosterDisagreement } from './views.js';
import type { ComponentEntry, ComponentStatus, OverallStatus } from './instances.js';

/**
 * The status rules: a component's status from its instances, and the whole
 * system's from its components, each with its reason in words. Pure: the
 * aggregator keeps the state and calls these.
 */

/** Components named in an overall reason outside the roster; the rest are counted. */
const REASON_NAMES = 5;

/**
 * A component's status from its instances that are not stale: missing with
 * none; unknown when every one reports unknown (alive, vouching for nothing: a
 * sidecar with no check of its neighbour, or whose checks have not answered
 * yet); else judged over those that report something else: unhealthy when all
 * are, degraded when any is not healthy (a suspect one counts as degraded),
 * healthy otherwise. From counts the table keeps: O(1).
 */
export function componentStatus(entry: ComponentEntry): ComponentStatus {
  if (entry.current === 0) return 'missing';
  const vouching = entry.current - entry.unknown;
  if (vouching === 0) return 'unknown';
  if (entry.unhealthy === vouching) return 'unhealthy';
  return entry.notHealthy > 0 ? 'degraded' : 'healthy';
}

/**
 * The overall status of a connected sentinel past its first interval: a
 * required component missing or unhealthy makes the system unhealthy; else a
 * required one unknown (nothing vouches for it) makes it unknown; a required
 * one degraded, an optional one not healthy (unknown included), a component
 * outside the roster unhealthy, or sentinels that disagree on the roster make
 * it degraded. The reason lists each, worst first.
 */
export function overallVerdict(
  roster: readonly ComponentEntry[],
  disagreement: RosterDisagreement | null,
  observedUnhealthy: ReadonlySet<string>,
): [OverallStatus, string] {
  const unhealthy: string[] = [];
  const unknown: string[] = [];
  const degraded: string[] = [];
  for (const c of roster) {
    const s = c.status ?? 'missing';
    // Why, in a few words: the failing checks, or whether it ever reported.
    const detail =
      s === 'unhealthy' || s === 'degraded'
        ? failingChecks(c.instances.values())
        : s === 'missing'
          ? c.instances.size === 0
            ? 'has not reported'
            : `${c.instances.size} of ${c.instances.size} instance${c.instances.size === 1 ? '' : 's'} stale`
          : s === 'unknown'
            ? unknownWhy(c)
            : '';
    const said = `${c.role} ${c.name} is ${s}${detail ? ` (${detail})` : ''}`;
    if (c.role === 'required') {
      if (s === 'missing' || s === 'unhealthy') unhealthy.push(said);
      else if (s === 'unknown') unknown.push(said);
      else if (s === 'degraded') degraded.push(said);
    } else if (s !== 'healthy') {
      degraded.push(said);
    }
  }
  if (disagreement) degraded.push(`sentinels disagree on the roster (${describeRosters(disagreement)})`);
  // Outside the roster, only an unhealthy component counts, and at most as degraded.
  for (const name of [...observedUnhealthy].slice(0, REASON_NAMES)) degraded.push(`${name} is unhealthy`);
  if (observedUnhealthy.size > REASON_NAMES) degraded.push(`and ${observedUnhealthy.size - REASON_NAMES} more unhealthy`);
  if (unhealthy.length > 0) return ['unhealthy', [...unhealthy, ...unknown, ...degraded].join('; ')];
  if (unknown.length > 0) return ['unknown', [...unknown, ...degraded].join('; ')];
  if (degraded.length > 0) return ['degraded', degraded.join('; ')];
  return ['healthy', 'every required component is healthy'];
}

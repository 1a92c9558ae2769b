import type { ConvergenceView } from './convergence.js';
import type { LifecycleState, ReportedStatus } from './heartbeat-payload.js';
import type { ComponentEntry, ComponentStatus, InstanceChange, InstanceStatus, OverallStatus, Role, Tracked } from './instances.js';

/**
 * The views of the health state, as the status reply, the status page and
 * the probe show them, and their wording: why a component or an instance has
 * its status, in words a person reads. Pure functions of the aggregator's state.
 */

export interface InstanceView {
  instance: string;
  status: InstanceStatus;
  reported: ReportedStatus;
  state: LifecycleState;
  lastSeenAt: string;
  lastSeenAgoMs: number;
  intervalMs: number;
  seq: number | null;
  uptime: number | null;
  version: string | null;
  policyRevision: string | null;
  checks: Record<string, 'ok' | 'error'>;
  /** Why its failing checks fail, as it said. */
  details?: Record<string, { message?: string }>;
}

export interface ComponentView {
  name: string;
  role: Role;
  status: ComponentStatus | 'unknown';
  /** Why, in words: "2 of 3 instances stale", "required gateway has not reported". */
  reason: string;
  instances: InstanceView[];
}

/** Aggregating sentinels that judge by different rosters: their answers would differ, so every answer says so. */
export interface RosterDisagreement {
  sentinels: { component: string; instance: string; digest: string; required: string[]; optional: string[] }[];
}

export interface StatusView {
  status: OverallStatus;
  reason: string;
  /** Live sentinels that disagree on the roster, or null. */
  rosters: RosterDisagreement | null;
  components: ComponentView[];
  /** Required components with no live instance. */
  missing: string[];
  policy: ConvergenceView;
  tracked: number;
}

/** Why a component has its status, in words: its instances, and the checks that fail. */
export function componentReason(entry: ComponentEntry, status: ComponentStatus | null = entry.status): string {
  const total = entry.instances.size;
  const stale = total - entry.current;
  const suspect = entry.current - entry.liveSet.size;
  const role = entry.role === 'observed' ? '' : `${entry.role} `;
  if (status === null) return `${role}${entry.name} has not reported yet`;
  if (total === 0) return `${role}${entry.name} has not reported`;
  const parts: string[] = [];
  if (stale > 0) parts.push(`${stale} of ${total} instance${total === 1 ? '' : 's'} stale`);
  if (suspect > 0) parts.push(`${suspect} of ${total} silent for over 1.5 intervals`);
  if (entry.unhealthy > 0) parts.push(`${entry.unhealthy} of ${total} unhealthy`);
  if (entry.degraded > 0) parts.push(`${entry.degraded} of ${total} degraded`);
  if (entry.unknown > 0) parts.push(`${entry.unknown} of ${total} unknown (${unknownWhy(entry)})`);
  const failing = failingChecks(entry.instances.values());
  if (failing) parts.push(failing);
  return parts.length > 0 ? parts.join(', ') : `${total} of ${total} healthy`;
}

/** Live instances looked at for why a component's instances report unknown. */
const UNKNOWN_WHY_LOOKS_AT = 32;

/**
 * Why instances that report unknown vouch for nothing, in words: the checks
 * of the first live one have not answered yet (it is starting), or it has
 * none. Looks at a bounded number of instances: cheap enough for every verdict.
 */
export function unknownWhy(entry: ComponentEntry): string {
  let looked = 0;
  for (const t of entry.liveSet) {
    if (t.reported === 'unknown') {
      if (t.state === 'starting') return 'its checks have not answered yet';
      break;
    }
    if (++looked >= UNKNOWN_WHY_LOOKS_AT) break;
  }
  return entry.unknown > 1 ? 'its sidecars have no check' : 'its sidecar has no check';
}

/** The failing checks of some instances, with their reasons, as they said them: "llm: HTTP 503, expected 200". */
export function failingChecks(instances: Iterable<Tracked>, limit = 3): string {
  const seen = new Map<string, string>();
  for (const t of instances) {
    if (t.status === 'stale' || !t.details) continue;
    for (const [name, detail] of Object.entries(t.details)) {
      const key = `${name}: ${detail.message ?? 'error'}`;
      seen.set(key, key);
      if (seen.size > limit) break;
    }
    if (seen.size > limit) break;
  }
  const list = [...seen.values()];
  if (list.length === 0) return '';
  return `failing ${list.slice(0, limit).join('; ')}${list.length > limit ? '; and more' : ''}`;
}

/** Why an instance moved, in words. */
export function instanceWhy(t: Tracked, to: InstanceStatus | 'gone', reason: InstanceChange['reason']): string {
  const interval = `${t.intervalMs / 1000} s`;
  switch (reason) {
    case 'join':
      return 'first heartbeat of this component';
    case 'restart':
      return to === 'gone' ? 'replaced by a newer instance (a restart)' : 'a new instance of a component heard before (a restart)';
    case 'reported': {
      const failing = failingChecks([t]);
      return `it reports ${to}${failing ? `: ${failing}` : ''}`;
    }
    case 'heard':
      return 'heard again';
    case 'silent':
      return `no heartbeat for over 1.5 intervals (${interval} each)`;
    case 'stale':
      return `no heartbeat for over 2.5 intervals (${interval} each)`;
    case 'leave':
      return 'left cleanly (a stopping heartbeat)';
    case 'expired':
      return 'stale for 10 intervals: forgotten';
    case 'evicted':
      return 'dropped to make room for newer instances';
  }
}

export function instanceView(t: Tracked, now: number): InstanceView {
  return {
    instance: t.instance,
    status: t.status,
    reported: t.reported,
    state: t.state,
    lastSeenAt: new Date(t.lastSeenWall).toISOString(),
    lastSeenAgoMs: Math.max(0, Math.round(now - t.lastSeen)),
    intervalMs: t.intervalMs,
    seq: t.seq,
    uptime: t.uptime,
    version: t.version,
    policyRevision: t.policyRevision ?? null,
    checks: t.checks,
    ...(t.details && Object.keys(t.details).length > 0 ? { details: t.details } : {}),
  };
}

/** `sentinel/a requires gateway, llm; sentinel/b requires gateway` */
export function describeRosters(d: RosterDisagreement): string {
  return d.sentinels
    .map((s) => `${s.component}/${s.instance} requires ${s.required.join(', ') || 'nothing'}${s.optional.length > 0 ? ` (optional ${s.optional.join(', ')})` : ''}`)
    .join('; ');
}

export function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}


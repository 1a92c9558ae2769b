import { DisplacedKeys } from './displaced-keys.js';
import type { Heartbeat, LifecycleState, PolicyFacts, ReportedStatus, Roster } from './heartbeat-payload.js';

/**
 * The instance table: every (component, instance) heard, grouped by
 * component, with what each group's status is computed from kept as counts,
 * and what restart matching and eviction look for kept as indexes, so that
 * taking in a heartbeat, judging a silence or making room costs the same with
 * one instance or ten thousand of one component. Pure: no clock, no I/O; the
 * aggregator says what time it is and hears what changed.
 */

/** An instance as seen by the aggregator: what it reports, or what its silence says. */
export type InstanceStatus = ReportedStatus | 'suspect' | 'stale';
/** `unknown`: every current instance reports unknown (alive, vouching for nothing). */
export type ComponentStatus = ReportedStatus | 'missing';
/** The whole system's: `unknown` while the sentinel cannot judge (not connected, cut off, its first interval). */
export type OverallStatus = ReportedStatus | 'unknown';
export type Role = 'required' | 'optional' | 'observed';

export interface Tracked {
  key: string;
  component: string;
  instance: string;
  reported: ReportedStatus;
  state: LifecycleState;
  status: InstanceStatus;
  firstSeen: number;
  lastSeen: number;
  lastSeenWall: number;
  /** The interval its silence is judged against: what it declared, clamped to the configured maximum. */
  intervalMs: number;
  seq: number | null;
  uptime: number | null;
  version: string | null;
  /** undefined: the instance does not report a policy at all. */
  policyRevision: string | null | undefined;
  /** Files of its set on disk that its consumer never reads (delivered, not enforced). */
  policyUnread: string[] | undefined;
  /** What else it said of its policy set: when delivered, a set it could not take, its reload hook's result. */
  policyFacts: PolicyFacts | undefined;
  checks: Record<string, 'ok' | 'error'>;
  /** The check details it published (reasons of failing checks), bounded. */
  details: Record<string, { message?: string }> | undefined;
  /** The roster it judges by, when it is an aggregating sentinel. */
  roster: Roster | undefined;
  /** Live instances of its component when it was last heard, itself included. */
  peers: number;
  /** This instance already stands for one restarted predecessor. */
  succeeded: boolean;
  /** Heartbeats heard from it: one-shot while 1, established from 2 (or 2 from the start when it was displaced before). */
  beats: number;
}

export interface ComponentEntry {
  name: string;
  role: Role;
  status: ComponentStatus | null;
  /** By instance id, least recently heard first (an instance moves to the end each time it is heard). */
  instances: Map<string, Tracked>;
  /** Neither suspect nor stale. */
  liveSet: Set<Tracked>;
  /**
   * Counts over the instances that are not stale: what the component's status
   * follows. `unknown`: those that report unknown (live or suspect), which vouch
   * for nothing and are left out of the others; `notHealthy` counts the rest
   * that are not healthy (suspect ones included), `degraded` and `unhealthy`
   * the live ones that report so.
   */
  current: number;
  unknown: number;
  unhealthy: number;
  degraded: number;
  notHealthy: number;
  /** Instances by the host part of their id, for restart matching. */
  byHost: Map<string, Set<Tracked>>;
  /** Suspect or stale instances that were alone when last heard: what the single-instance restart rule looks at. */
  silentSolo: Set<Tracked>;
  /** Suspect or stale instances, in the order they fell silent: the first to make room in a component at its cap. */
  silent: Set<Tracked>;
  /** Instances heard only once, oldest first: the next to make room, before any heard twice. */
  oneShot: Set<Tracked>;
}

/** Instances of one component tracked at most, unless configured otherwise. */
export const DEFAULT_MAX_PER_COMPONENT = 1000;

/** More instances than this sharing one host part are replicas, not a host's restarts: no matching within them. */
export const MAX_HOST_GROUP = 32;

export function isLive(status: InstanceStatus): boolean {
  return status !== 'suspect' && status !== 'stale';
}

/** What a removal or a change is called in a transition. */
export type InstanceChange = { t: Tracked; from: InstanceStatus | null; to: InstanceStatus | 'gone'; reason: 'join' | 'restart' | 'reported' | 'heard' | 'silent' | 'stale' | 'leave' | 'expired' | 'evicted' };

export interface InstanceTableOptions {
  maxInstances: number;
  maxPerComponent: number;
  /** The roster: a component named here is never made room from while its instances live and keep beating. */
  roles: ReadonlyMap<string, Role>;
  onChange: (change: InstanceChange) => void;
  /** The memory of displaced instances (tests give a small one). */
  displaced?: DisplacedKeys;
}

export class InstanceTable {
  readonly components = new Map<string, ComponentEntry>();
  private readonly byKey = new Map<string, Tracked>();
  /** Stale instances, oldest first: the first to go when the table is full. */
  private readonly staleOrder = new Set<Tracked>();
  /** Instances of components outside the roster, least recently heard first: what a flood displaces. */
  private readonly observedOrder = new Map<string, Tracked>();
  /** Instances heard only once, oldest first: outside the roster, and in it. */
  private readonly oneShotOutside = new Set<Tracked>();
  private readonly oneShotRostered = new Set<Tracked>();
  /** Instances displaced to make room: heard again, they come back as heard twice. */
  private readonly displaced: DisplacedKeys;

  constructor(private readonly options: InstanceTableOptions) {
    this.displaced = options.displaced ?? new DisplacedKeys();
    for (const [name, role] of options.roles) this.entry(name, role);
  }

  get size(): number {
    return this.byKey.size;
  }

  get(component: string, instance: string): Tracked | undefined {
    // Two lookups by the strings the heartbeat carries: no key string built per heartbeat.
    return this.components.get(component)?.instances.get(instance);
  }

  all(): IterableIterator<Tracked> {
    return this.byKey.values();
  }

  /** The component's entry, made (empty) if it is new. */
  entry(name: string, role: Role = 'observed'): ComponentEntry {
    let entry = this.components.get(name);
    if (!entry) {
      entry = {
        name,
        role,
        status: null,
        instances: new Map(),
        liveSet: new Set(),
        current: 0,
        unknown: 0,
        unhealthy: 0,
        degraded: 0,
        notHealthy: 0,
        byHost: new Map(),
        silentSolo: new Set(),
        silent: new Set(),
        oneShot: new Set(),
      };
      this.components.set(name, entry);
    }
    return entry;
  }

  /**
   * Room for a new instance of `component`, if there is or can be made. Room
   * is kept for instances that keep beating over those that spoke once: a
   * component at its own cap gives up its own oldest silent instance, else its
   * oldest heard only once, else (outside the roster) its least recently heard;
   * a full table gives up its oldest stale instance, else the oldest heard only
   * once outside the roster, else the least recently heard outside it, else the
   * oldest heard only once in it. A live instance of a rostered component heard
   * twice is never displaced, and one displaced comes back as heard twice (see
   * DisplacedKeys): a flood of one-shot claims, under made-up names or a
   * rostered one, never locks out an instance that keeps beating. Each choice
   * is the first of an index: O(1).
   */
  makeRoom(component: string): boolean {
    const entry = this.components.get(component);
    const role = this.options.roles.get(component) ?? 'observed';
    if (entry && entry.instances.size >= this.options.maxPerComponent) {
      const victim = first(entry.silent) ?? first(entry.oneShot) ?? (role === 'observed' ? first(entry.instances.values()) : undefined);
      if (!victim) return false;
      this.remove(victim, 'evicted');
    }
    if (this.byKey.size >= this.options.maxInstances) {
      const victim = first(this.staleOrder) ?? first(this.oneShotOutside) ?? first(this.observedOrder.values()) ?? first(this.oneShotRostered);
      if (!victim) return false;
      this.remove(victim, 'evicted');
    }
    return true;
  }

  /** Starts tracking an instance heard for the first time (room must have been made). */
  add(hb: Heartbeat, instance: string, now: number, wallNow: number, intervalMs: number, known: boolean): Tracked {
    const key = keyOf(hb.component, instance);
    const entry = this.entry(hb.component, this.options.roles.get(hb.component) ?? 'observed');
    const t: Tracked = {
      key,
      component: hb.component,
      instance,
      reported: hb.status,
      state: hb.state ?? 'running',
      status: hb.status,
      firstSeen: now,
      lastSeen: now,
      lastSeenWall: wallNow,
      intervalMs,
      seq: hb.seq ?? null,
      uptime: hb.uptime ?? null,
      version: hb.version ?? null,
      policyRevision: hb.policy ? hb.policy.revision : undefined,
      policyUnread: hb.policy?.unread,
      policyFacts: factsOf(hb),
      checks: hb.checks ?? {},
      details: detailsOf(hb),
      roster: hb.roster,
      peers: 0,
      succeeded: false,
      // Displaced before, and heard again: that is its second heartbeat.
      beats: this.displaced.take(key) ? 2 : 1,
    };
    this.byKey.set(key, t);
    entry.instances.set(t.instance, t);
    if (entry.role === 'observed') this.observedOrder.set(key, t);
    if (t.beats === 1) {
      entry.oneShot.add(t);
      (entry.role === 'observed' ? this.oneShotOutside : this.oneShotRostered).add(t);
    }
    const host = hostOf(instance);
    if (host !== undefined) {
      let group = entry.byHost.get(host);
      if (!group) entry.byHost.set(host, (group = new Set()));
      group.add(t);
    }
    this.account(entry, t, +1);
    t.peers = entry.liveSet.size;
    this.options.onChange({ t, from: null, to: t.status, reason: known ? 'restart' : 'join' });
    this.retireReplaced(entry, t);
    return t;
  }

  /** Takes in a new heartbeat of a tracked instance. */
  heard(t: Tracked, hb: Heartbeat, now: number, wallNow: number, intervalMs: number): void {
    const entry = this.components.get(t.component) as ComponentEntry;
    const before = t.status;
    // The common beat says what the last one did: its counts and indexes stay as they are.
    const same = hb.status === before && hb.status === t.reported;
    if (!same) this.account(entry, t, -1);
    t.reported = hb.status;
    t.state = hb.state ?? 'running';
    t.status = hb.status;
    t.lastSeen = now;
    t.lastSeenWall = wallNow;
    t.intervalMs = intervalMs;
    t.seq = hb.seq ?? null;
    t.uptime = hb.uptime ?? null;
    t.version = hb.version ?? null;
    t.policyRevision = hb.policy ? hb.policy.revision : undefined;
    t.policyUnread = hb.policy?.unread;
    t.policyFacts = factsOf(hb);
    t.checks = hb.checks ?? {};
    t.details = detailsOf(hb);
    t.roster = hb.roster;
    if (!same) this.account(entry, t, +1);
    t.peers = entry.liveSet.size;
    if (t.beats++ === 1) this.forgetOneShot(entry, t);
    if (before === 'stale') this.staleOrder.delete(t);
    // Least recently heard first: move it to the end.
    entry.instances.delete(t.instance);
    entry.instances.set(t.instance, t);
    if (entry.role === 'observed') {
      this.observedOrder.delete(t.key);
      this.observedOrder.set(t.key, t);
    }
    if (before !== t.status) this.options.onChange({ t, from: before, to: t.status, reason: isLive(before) ? 'reported' : 'heard' });
  }

  /** Marks an instance suspect or stale (its silence judged by the aggregator). */
  fallSilent(t: Tracked, to: 'suspect' | 'stale'): void {
    const entry = this.components.get(t.component) as ComponentEntry;
    const from = t.status;
    this.account(entry, t, -1);
    t.status = to;
    this.account(entry, t, +1);
    if (to === 'stale') this.staleOrder.add(t);
    this.options.onChange({ t, from, to, reason: to === 'stale' ? 'stale' : 'silent' });
  }

  remove(t: Tracked, reason: InstanceChange['reason']): void {
    const entry = this.components.get(t.component);
    this.byKey.delete(t.key);
    this.staleOrder.delete(t);
    this.observedOrder.delete(t.key);
    if (reason === 'evicted') this.displaced.remember(t.key);
    if (entry) {
      this.forgetOneShot(entry, t);
      this.account(entry, t, -1);
      entry.instances.delete(t.instance);
      const host = hostOf(t.instance);
      const group = host === undefined ? undefined : entry.byHost.get(host);
      group?.delete(t);
      if (group?.size === 0 && host !== undefined) entry.byHost.delete(host);
    }
    this.options.onChange({ t, from: t.status, to: 'gone', reason });
  }

  /** Drops a component with no instance left; the caller says whether it may (rostered ones stay). */
  forget(entry: ComponentEntry): void {
    this.components.delete(entry.name);
  }

  /**
   * Whether a silent instance was restarted rather than lost: a newer live
   * instance of its component has appeared since it was last heard and takes
   * its place (see `succeeds`). Each newer instance takes one place only.
   */
  replacedBy(t: Tracked): boolean {
    const entry = this.components.get(t.component);
    if (!entry) return false;
    const liveOthers = entry.liveSet.size - (isLive(t.status) ? 1 : 0);
    let heir: Tracked | undefined;
    for (const o of this.candidates(entry, t, t.peers === 1 && liveOthers === 1 ? entry.liveSet : undefined)) {
      if (o === t || o.succeeded || o.firstSeen <= t.lastSeen || !isLive(o.status) || !succeeds(o, t, liveOthers)) continue;
      if (!heir || o.firstSeen < heir.firstSeen) heir = o;
    }
    if (!heir) return false;
    heir.succeeded = true;
    return true;
  }

  /** A newcomer that restarts an instance already found silent retires it at once. */
  private retireReplaced(entry: ComponentEntry, newcomer: Tracked): void {
    let predecessor: Tracked | undefined;
    for (const o of this.candidates(entry, newcomer, entry.liveSet.size === 1 ? entry.silentSolo : undefined)) {
      if (o === newcomer || isLive(o.status) || o.lastSeen >= newcomer.firstSeen || !succeeds(newcomer, o, entry.liveSet.size)) continue;
      if (!predecessor || o.lastSeen < predecessor.lastSeen) predecessor = o;
    }
    if (!predecessor) return;
    newcomer.succeeded = true;
    this.remove(predecessor, 'restart');
  }

  /** Who can stand for whom: the instances that share `t`'s host part (a bounded group), and `more`. */
  private *candidates(entry: ComponentEntry, t: Tracked, more: Iterable<Tracked> | undefined): Iterable<Tracked> {
    const host = hostOf(t.instance);
    const group = host === undefined ? undefined : entry.byHost.get(host);
    if (group && group.size <= MAX_HOST_GROUP) yield* group;
    if (more) yield* more;
  }

  private forgetOneShot(entry: ComponentEntry, t: Tracked): void {
    entry.oneShot.delete(t);
    this.oneShotOutside.delete(t);
    this.oneShotRostered.delete(t);
  }

  /** Adds (+1) or takes away (-1) an instance's share of its component's counts and indexes. */
  private account(entry: ComponentEntry, t: Tracked, sign: 1 | -1): void {
    const live = isLive(t.status);
    if (t.status !== 'stale') {
      entry.current += sign;
      // One that reports unknown vouches for nothing, not even by falling silent.
      if (t.reported === 'unknown') entry.unknown += sign;
      else if (t.status !== 'healthy') entry.notHealthy += sign;
      if (t.status === 'unhealthy') entry.unhealthy += sign;
      if (t.status === 'degraded') entry.degraded += sign;
    }
    if (sign > 0) {
      if (live) entry.liveSet.add(t);
      else {
        entry.silent.add(t);
        if (t.peers === 1) entry.silentSolo.add(t);
      }
    } else {
      entry.liveSet.delete(t);
      entry.silent.delete(t);
      entry.silentSolo.delete(t);
    }
  }
}

export function keyOf(component: string, instance: string): string {
  return `${component}\u0000${instance}`;
}

/**
 * Whether `newer` restarts `older`: their ids share the host part (the
 * sentinel's own ids, and any `hostname-suffix` scheme, keep the host across
 * restarts, as Docker and Kubernetes keep the hostname), or the component runs
 * a single instance: `older` was alone when last heard, and `newer` is the
 * only live one now (`liveOthers`). Replicas with opaque ids are never taken
 * for each other: a silent one goes suspect and stale.
 */
function succeeds(newer: Tracked, older: Tracked, liveOthers: number): boolean {
  const host = hostOf(older.instance);
  return (host !== undefined && hostOf(newer.instance) === host) || (older.peers === 1 && liveOthers === 1);
}

/** `host-abc123` -> `host`: the part of an instance id that survives a restart, when there is one. */
function hostOf(instance: string): string | undefined {
  const dash = instance.lastIndexOf('-');
  return dash > 0 ? instance.slice(0, dash) : undefined;
}

function first<T>(items: Iterable<T>): T | undefined {
  for (const item of items) return item;
  return undefined;
}

/** The reasons a heartbeat gives for its failing checks, bounded (names and messages are the sender's). */
function detailsOf(hb: Heartbeat): Tracked['details'] {
  const details = hb.details;
  if (!details || typeof details !== 'object' || !hb.checks) return undefined;
  const out: Record<string, { message?: string }> = {};
  for (const [name, result] of Object.entries(hb.checks)) {
    if (result !== 'error') continue;
    const message = (details as Record<string, { message?: unknown } | undefined>)[name]?.message;
    out[name] = typeof message === 'string' ? { message: message.slice(0, 200) } : {};
  }
  return out;
}

/** The policy facts a rollout reads (when delivered, a failure, the hook), when the heartbeat says any. */
function factsOf(hb: Heartbeat): PolicyFacts | undefined {
  const { deliveredAt, failure, hook } = hb.policy ?? {};
  if (deliveredAt === undefined && failure === undefined && hook === undefined) return undefined;
  return { ...(deliveredAt !== undefined ? { deliveredAt } : {}), ...(failure ? { failure } : {}), ...(hook ? { hook } : {}) };
}

import type { Clock } from '../clock.js';
import type { Heartbeat, LifecycleState, ReportedStatus } from './heartbeat-payload.js';

/**
 * The aggregated view of everyone's heartbeats: a pure state machine over a
 * clock. It does no I/O: heartbeats come in through `ingest`, time moves
 * through `tick`, the bus connection through `setConnected`, and every change
 * of status goes out, exactly once, through `onTransition`.
 */

/** An instance as seen by the aggregator: what it reports, or what its silence says. */
export type InstanceStatus = ReportedStatus | 'suspect' | 'stale';
export type ComponentStatus = ReportedStatus | 'missing';
export type OverallStatus = ReportedStatus | 'unknown';
export type Role = 'required' | 'optional' | 'observed';

export interface Transition {
  scope: 'instance' | 'component' | 'overall';
  component: string | null;
  instance: string | null;
  /** null when the subject first appears. */
  from: string | null;
  /** `gone` when an instance or an observed component is removed. */
  to: string;
  reason: TransitionReason;
  /** Wall-clock time of the last heartbeat behind this (ISO 8601), if any. */
  lastSeenAt: string | null;
  /**
   * The `seq` of the instance's last heartbeat, when it sends one: sentinel
   * replicas each publish the transitions they see, and `(component, instance,
   * seq, to)` is the same for all of them, so subscribers can drop duplicates.
   */
  seq: number | null;
  detectedAt: string;
}

export type TransitionReason =
  | 'join' // first heartbeat of an instance of a new component
  | 'restart' // a new instance of a known component, or an old one it replaced
  | 'reported' // the instance reported another status
  | 'heard' // a suspect or stale instance was heard again
  | 'silent' // no heartbeat for 1.5 intervals
  | 'stale' // no heartbeat for 2.5 intervals + 0.3 s (detected within 2.5 intervals + 0.5 s)
  | 'leave' // a `stopping` heartbeat: a clean leave, not a failure
  | 'expired' // stale for long enough to be forgotten
  | 'evicted' // dropped to make room under the instance cap
  | 'instances' // a component's status follows its instances
  | 'missing' // a component with no live instance
  | 'aggregate' // the overall status follows the components
  | 'disconnected' // the sentinel itself lost the bus
  | 'grace'; // within the first interval after start or reconnect

export const SUSPECT_AFTER_INTERVALS = 1.5;
/**
 * Stale after 2.5 intervals + 0.3 s of silence, so that with the 0.1 s sweep
 * and some scheduling slack a dead sender is called stale within 2.5 intervals
 * + 0.5 s. At H = 1 s that still outlasts one lost heartbeat under ±30% jitter
 * (at most 2.6 intervals of silence).
 */
export const STALE_AFTER_INTERVALS = 2.5;
export const STALE_MARGIN = 300; // ms
/** A stale instance is forgotten after this many intervals, and at least FORGET_AFTER_MIN. */
export const FORGET_AFTER_INTERVALS = 10;
export const FORGET_AFTER_MIN = 60_000; // 1 minute
/** How many component names are remembered after their last instance is gone. */
const RECENT_COMPONENTS = 1024;

export interface AggregatorOptions {
  clock: Clock;
  /** The aggregator's own interval: the grace after start and reconnect, and the default for senders that do not say. */
  intervalMs: number;
  required: readonly string[];
  optional: readonly string[];
  maxInstances: number;
  onTransition: (t: Transition) => void;
}

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
}

export interface ComponentView {
  name: string;
  role: Role;
  status: ComponentStatus | 'unknown';
  instances: InstanceView[];
}

export interface ConvergenceView {
  /** The revision in force (announced by this sentinel), or null before the first. */
  revision: string | null;
  announcedAt: string | null;
  /** Live instances that report a policy revision. */
  reporting: number;
  onRevision: number;
  behind: { component: string; instance: string; revision: string | null; behindForMs: number }[];
  converged: boolean;
  /** How long the last completed convergence took, from announcement to the last instance. */
  lastConvergence: { revision: string; tookMs: number; at: string } | null;
  summary: string;
}

export interface StatusView {
  status: OverallStatus;
  reason: string;
  components: ComponentView[];
  /** Required components with no live instance. */
  missing: string[];
  policy: ConvergenceView;
  tracked: number;
}

interface Tracked {
  key: string;
  component: string;
  instance: string;
  reported: ReportedStatus;
  state: LifecycleState;
  status: InstanceStatus;
  firstSeen: number;
  lastSeen: number;
  lastSeenWall: number;
  intervalMs: number;
  seq: number | null;
  uptime: number | null;
  version: string | null;
  /** undefined: the instance does not report a policy at all. */
  policyRevision: string | null | undefined;
  checks: Record<string, 'ok' | 'error'>;
  /** Live instances of its component when it was last heard, itself included. */
  peers: number;
  /** This instance already stands for one restarted predecessor. */
  succeeded: boolean;
}

interface ComponentEntry {
  name: string;
  role: Role;
  status: ComponentStatus | null;
  instances: Map<string, Tracked>;
  /** Instances neither suspect nor stale. */
  live: number;
}

export type IngestOutcome = 'tracked' | 'left' | 'ignored' | 'refused';

export class HealthAggregator {
  private readonly instances = new Map<string, Tracked>();
  private readonly components = new Map<string, ComponentEntry>();
  /** Stale instances, oldest first: the first to evict under the cap. */
  private readonly staleOrder = new Set<string>();
  private readonly dirty = new Set<string>();
  /** The rostered components (required and optional), which never leave the view. */
  private readonly roster: ComponentEntry[];
  /** Observed (not rostered) components that are unhealthy: they make the system degraded. */
  private readonly observedUnhealthy = new Set<string>();
  /** Components seen lately, so that a new instance after a clean leave is still a restart. */
  private readonly recentComponents = new Map<string, true>();
  private connected = false;
  /** The grace after start or reconnect has not been closed yet. */
  private graceOpen = true;
  private graceUntil: number;
  /** Silence is judged from here at the earliest: the last (re)connection. */
  private silenceFrom: number;
  private overallStatus: OverallStatus = 'unknown';
  private overallReason = 'starting: waiting for the first interval';
  private policy: { revision: string | null; since: number; sinceWall: number; converged: boolean } = {
    revision: null,
    since: 0,
    sinceWall: 0,
    converged: false,
  };
  private lastConvergence: ConvergenceView['lastConvergence'] = null;

  constructor(private readonly options: AggregatorOptions) {
    const now = options.clock.now();
    this.graceUntil = now + options.intervalMs;
    this.silenceFrom = now;
    for (const name of options.optional) this.entry(name, 'optional');
    // Required wins if a name is in both lists.
    for (const name of options.required) this.entry(name, 'required').role = 'required';
    this.roster = [...this.components.values()];
  }

  get trackedCount(): number {
    return this.instances.size;
  }

  get overall(): OverallStatus {
    return this.overallStatus;
  }

  /** The bus connection came up (start or reconnect) or went down. */
  setConnected(connected: boolean): void {
    const now = this.options.clock.now();
    this.connected = connected;
    if (connected) {
      // Our own outage must not become everyone else's failure: one full interval before judging silence.
      this.graceUntil = now + this.options.intervalMs;
      this.graceOpen = true;
      this.silenceFrom = now;
    }
    this.reconcile();
  }

  /** The revision now in force, as announced on the bus; convergence is measured from now. */
  setPolicy(revision: string | null): void {
    if (revision === this.policy.revision) return;
    this.policy = { revision, since: this.options.clock.now(), sinceWall: this.options.clock.wallNow(), converged: false };
    this.checkConvergence();
  }

  /** Takes in one heartbeat (already validated). */
  ingest(hb: Heartbeat): IngestOutcome {
    const { clock } = this.options;
    const now = clock.now();
    const instance = hb.instance ?? hb.component;
    const key = `${hb.component}\u0000${instance}`;
    let tracked = this.instances.get(key);

    if (hb.state === 'stopping') {
      if (!tracked) return 'ignored';
      tracked.lastSeenWall = clock.wallNow();
      this.remove(tracked, 'leave');
      this.reconcile();
      return 'left';
    }

    if (!tracked) {
      if (this.instances.size >= this.options.maxInstances && !this.evictOne()) return 'refused';
      const component = this.components.get(hb.component);
      // Heard before (now or lately): a new instance is that component restarting, not a new service.
      const known = (component !== undefined && component.instances.size > 0) || this.recentComponents.has(hb.component);
      this.remember(hb.component);
      tracked = {
        key,
        component: hb.component,
        instance,
        reported: hb.status,
        state: hb.state ?? 'running',
        status: hb.status,
        firstSeen: now,
        lastSeen: now,
        lastSeenWall: clock.wallNow(),
        intervalMs: hb.intervalMs ?? this.options.intervalMs,
        seq: hb.seq ?? null,
        uptime: hb.uptime ?? null,
        version: hb.version ?? null,
        policyRevision: hb.policy ? hb.policy.revision : undefined,
        checks: hb.checks ?? {},
        peers: 0,
        succeeded: false,
      };
      this.instances.set(key, tracked);
      const entry = this.entry(hb.component, 'observed');
      entry.instances.set(key, tracked);
      tracked.peers = ++entry.live;
      this.emit('instance', tracked, null, tracked.status, known ? 'restart' : 'join');
      this.retireReplaced(tracked);
    } else {
      const before = tracked.status;
      tracked.reported = hb.status;
      tracked.state = hb.state ?? 'running';
      tracked.status = hb.status;
      tracked.lastSeen = now;
      tracked.lastSeenWall = clock.wallNow();
      tracked.intervalMs = hb.intervalMs ?? tracked.intervalMs;
      tracked.seq = hb.seq ?? null;
      tracked.uptime = hb.uptime ?? null;
      tracked.version = hb.version ?? null;
      tracked.policyRevision = hb.policy ? hb.policy.revision : undefined;
      tracked.checks = hb.checks ?? {};
      this.staleOrder.delete(key);
      const entry = this.components.get(hb.component);
      if (entry) {
        if (!isLive(before)) entry.live++;
        tracked.peers = entry.live;
      }
      if (before !== tracked.status) {
        this.emit('instance', tracked, before, tracked.status, before === 'suspect' || before === 'stale' ? 'heard' : 'reported');
      }
    }
    this.dirty.add(hb.component);
    // Convergence is a scan of every instance: judged on the next tick (or view), not per heartbeat.
    this.reconcile(false);
    return 'tracked';
  }

  /** Judges silence against each sender's interval. Call it often (every ~100 ms). */
  tick(): void {
    if (!this.connected) return;
    const now = this.options.clock.now();
    for (const t of this.instances.values()) {
      const silent = now - Math.max(t.lastSeen, this.silenceFrom);
      if (t.status === 'stale') {
        if (now - t.lastSeen > Math.max(FORGET_AFTER_MIN, FORGET_AFTER_INTERVALS * t.intervalMs)) this.remove(t, 'expired');
        continue;
      }
      const staleAfter = STALE_AFTER_INTERVALS * t.intervalMs + STALE_MARGIN;
      const suspectAfter = SUSPECT_AFTER_INTERVALS * t.intervalMs;
      if (silent <= suspectAfter || (t.status === 'suspect' && silent <= staleAfter)) continue;
      // Silent while a newer instance of the same component is alive: it was restarted, not lost.
      if (this.replacedBy(t)) {
        this.remove(t, 'restart');
        continue;
      }
      const to = silent > staleAfter ? 'stale' : 'suspect';
      const from = t.status;
      t.status = to;
      if (isLive(from)) this.components.get(t.component)!.live--;
      if (to === 'stale') this.staleOrder.add(t.key);
      this.dirty.add(t.component);
      this.emit('instance', t, from, to, to === 'stale' ? 'stale' : 'silent');
    }
    this.reconcile();
  }

  /** The view for a status reply; one component's when `component` is given. */
  view(component?: string): StatusView {
    this.checkConvergence();
    const now = this.options.clock.now();
    const names = component !== undefined ? [component] : [...this.components.keys()].sort();
    const components: ComponentView[] = names.map((name) => {
      const entry = this.components.get(name);
      if (!entry) return { name, role: 'observed', status: 'missing', instances: [] };
      return {
        name,
        role: entry.role,
        status: entry.status ?? 'unknown',
        instances: [...entry.instances.values()].map((t) => this.instanceView(t, now)),
      };
    });
    const missing = [...this.components.values()].filter((c) => c.role === 'required' && c.status === 'missing').map((c) => c.name);
    return {
      status: this.overallStatus,
      reason: this.overallReason,
      components,
      missing,
      policy: this.convergenceView(now),
      tracked: this.instances.size,
    };
  }

  /** Each component's status and role in name order, as `view()` lists them, without building instance views (for metrics). */
  componentStatuses(): { name: string; role: ComponentView['role']; status: ComponentView['status'] }[] {
    return [...this.components.keys()].sort().map((name) => {
      const entry = this.components.get(name)!;
      return { name, role: entry.role, status: entry.status ?? 'unknown' };
    });
  }

  /** Live instances that report a policy revision, and how many run the one in force (for metrics). */
  policyCounts(): { reporting: number; onRevision: number } {
    let reporting = 0;
    let onRevision = 0;
    for (const t of this.instances.values()) {
      if (t.policyRevision === undefined || t.status === 'stale') continue;
      reporting++;
      if (t.policyRevision === this.policy.revision) onRevision++;
    }
    return { reporting, onRevision };
  }

  private instanceView(t: Tracked, now: number): InstanceView {
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
    };
  }

  private convergenceView(now: number): ConvergenceView {
    const { revision } = this.policy;
    const reporting = [...this.instances.values()].filter((t) => t.policyRevision !== undefined && t.status !== 'stale');
    const behind = reporting
      .filter((t) => t.policyRevision !== revision)
      .map((t) => ({
        component: t.component,
        instance: t.instance,
        revision: t.policyRevision ?? null,
        behindForMs: Math.round(now - Math.max(this.policy.since, t.firstSeen)),
      }))
      .sort((a, b) => b.behindForMs - a.behindForMs);
    const onRevision = reporting.length - behind.length;
    const short = revision === null ? 'none' : revision.slice(0, 12);
    let summary = `${onRevision} of ${reporting.length} on revision ${short}`;
    if (behind.length > 0) {
      const first = behind.slice(0, 3).map((b) => `${b.component}/${b.instance} behind for ${formatAgo(b.behindForMs)}`);
      summary += `, ${first.join(', ')}${behind.length > 3 ? ` and ${behind.length - 3} more` : ''}`;
    }
    return {
      revision,
      announcedAt: revision === null ? null : new Date(this.policy.sinceWall).toISOString(),
      reporting: reporting.length,
      onRevision,
      behind,
      converged: revision !== null && behind.length === 0 && reporting.length > 0,
      lastConvergence: this.lastConvergence,
      summary,
    };
  }

  /** Records when every live instance that reports a policy reached the revision in force. */
  private checkConvergence(): void {
    const { revision } = this.policy;
    if (revision === null || this.policy.converged) return;
    let onRevision = 0;
    for (const t of this.instances.values()) {
      if (t.policyRevision === undefined || t.status === 'stale') continue;
      if (t.policyRevision !== revision) return;
      onRevision++;
    }
    // Nobody reporting is not convergence.
    if (onRevision === 0) return;
    this.policy.converged = true;
    this.lastConvergence = {
      revision,
      tookMs: Math.round(this.options.clock.now() - this.policy.since),
      at: new Date(this.options.clock.wallNow()).toISOString(),
    };
  }

  /**
   * Whether a silent instance was restarted rather than lost: a newer live
   * instance of its component has appeared since it was last heard and takes
   * its place (see `succeeds`). Each newer instance takes one place only.
   */
  private replacedBy(t: Tracked): boolean {
    const entry = this.components.get(t.component);
    if (!entry) return false;
    const liveOthers = entry.live - (isLive(t.status) ? 1 : 0);
    const heir = [...entry.instances.values()]
      .filter((o) => o !== t && !o.succeeded && o.firstSeen > t.lastSeen && isLive(o.status) && succeeds(o, t, liveOthers))
      .sort((a, b) => a.firstSeen - b.firstSeen)[0];
    if (!heir) return false;
    heir.succeeded = true;
    return true;
  }

  /** A newcomer that restarts an instance already found silent retires it at once. */
  private retireReplaced(newcomer: Tracked): void {
    const entry = this.components.get(newcomer.component);
    if (!entry) return;
    const predecessor = [...entry.instances.values()]
      .filter((o) => o !== newcomer && !isLive(o.status) && o.lastSeen < newcomer.firstSeen && succeeds(newcomer, o, entry.live))
      .sort((a, b) => a.lastSeen - b.lastSeen)[0];
    if (!predecessor) return;
    newcomer.succeeded = true;
    this.remove(predecessor, 'restart');
  }

  /** Bounded memory of component names, newest last. */
  private remember(name: string): void {
    this.recentComponents.delete(name);
    this.recentComponents.set(name, true);
    if (this.recentComponents.size > RECENT_COMPONENTS) {
      this.recentComponents.delete(this.recentComponents.keys().next().value as string);
    }
  }

  private evictOne(): boolean {
    const oldest = this.staleOrder.values().next();
    if (oldest.done) return false;
    const t = this.instances.get(oldest.value);
    if (t) this.remove(t, 'evicted');
    return true;
  }

  private remove(t: Tracked, reason: TransitionReason): void {
    this.instances.delete(t.key);
    this.staleOrder.delete(t.key);
    const entry = this.components.get(t.component);
    entry?.instances.delete(t.key);
    if (entry && isLive(t.status)) entry.live--;
    this.dirty.add(t.component);
    this.emit('instance', t, t.status, 'gone', reason);
  }

  private entry(name: string, role: Role): ComponentEntry {
    let entry = this.components.get(name);
    if (!entry) {
      entry = { name, role, status: null, instances: new Map(), live: 0 };
      this.components.set(name, entry);
      this.dirty.add(name);
    }
    return entry;
  }

  /**
   * Recomputes the components that changed, then the overall status; emits
   * what moved. Cheap unless `convergence` asks for the (linear) policy check.
   */
  private reconcile(convergence = true): void {
    const now = this.options.clock.now();
    const inGrace = now < this.graceUntil;
    for (const name of this.dirty) {
      const entry = this.components.get(name);
      if (!entry) continue;
      const next = componentStatus(entry);
      if (entry.role === 'observed' && entry.instances.size === 0) {
        // An observed component with nothing left is dropped from the view.
        this.components.delete(name);
        this.observedUnhealthy.delete(name);
        if (entry.status !== null) this.emitComponent(entry, 'gone', 'missing');
        continue;
      }
      // Before the first interval is over, a component never heard is not yet missing.
      if (next === 'missing' && entry.status === null && inGrace) continue;
      if (next !== entry.status) this.setComponentStatus(entry, next, next === 'missing' ? 'missing' : 'instances');
    }
    this.dirty.clear();
    if (!inGrace && this.graceOpen) {
      // The grace just ended: rostered components never heard are missing now.
      this.graceOpen = false;
      for (const entry of this.components.values()) {
        if (entry.status === null && entry.instances.size === 0) this.setComponentStatus(entry, 'missing', 'missing');
      }
    }
    const [status, reason] = this.overallNow(inGrace);
    this.overallReason = reason;
    if (status !== this.overallStatus) {
      const from = this.overallStatus;
      this.overallStatus = status;
      this.options.onTransition({
        scope: 'overall',
        component: null,
        instance: null,
        from,
        to: status,
        reason: !this.connected ? 'disconnected' : inGrace ? 'grace' : 'aggregate',
        lastSeenAt: null,
        seq: null,
        detectedAt: new Date(this.options.clock.wallNow()).toISOString(),
      });
    }
    if (convergence) this.checkConvergence();
  }

  private overallNow(inGrace: boolean): [OverallStatus, string] {
    if (!this.connected) return ['unknown', 'the sentinel is not connected to the bus'];
    if (inGrace) return ['unknown', 'within the first interval after connecting'];
    const unhealthy: string[] = [];
    const degraded: string[] = [];
    for (const c of this.roster) {
      const s = c.status ?? 'missing';
      if (c.role === 'required') {
        if (s === 'missing' || s === 'unhealthy') unhealthy.push(`required ${c.name} is ${s}`);
        else if (s === 'degraded') degraded.push(`required ${c.name} is degraded`);
      } else if (s !== 'healthy') {
        degraded.push(`optional ${c.name} is ${s}`);
      }
    }
    // Outside the roster, only an unhealthy component counts, and at most as degraded.
    for (const name of [...this.observedUnhealthy].slice(0, 5)) degraded.push(`${name} is unhealthy`);
    if (this.observedUnhealthy.size > 5) degraded.push(`and ${this.observedUnhealthy.size - 5} more unhealthy`);
    if (unhealthy.length > 0) return ['unhealthy', [...unhealthy, ...degraded].join('; ')];
    if (degraded.length > 0) return ['degraded', degraded.join('; ')];
    return ['healthy', 'every required component is healthy'];
  }

  private emit(scope: 'instance', t: Tracked, from: string | null, to: string, reason: TransitionReason): void {
    this.options.onTransition({
      scope,
      component: t.component,
      instance: t.instance,
      from,
      to,
      reason,
      lastSeenAt: new Date(t.lastSeenWall).toISOString(),
      seq: t.seq,
      detectedAt: new Date(this.options.clock.wallNow()).toISOString(),
    });
  }

  private setComponentStatus(entry: ComponentEntry, to: ComponentStatus, reason: TransitionReason): void {
    this.emitComponent(entry, to, reason);
    entry.status = to;
    if (entry.role === 'observed' && to === 'unhealthy') this.observedUnhealthy.add(entry.name);
    else this.observedUnhealthy.delete(entry.name);
  }

  private emitComponent(entry: ComponentEntry, to: string, reason: TransitionReason): void {
    let lastSeen = 0;
    for (const t of entry.instances.values()) lastSeen = Math.max(lastSeen, t.lastSeenWall);
    this.options.onTransition({
      scope: 'component',
      component: entry.name,
      instance: null,
      from: entry.status,
      to,
      reason,
      lastSeenAt: lastSeen > 0 ? new Date(lastSeen).toISOString() : null,
      seq: null,
      detectedAt: new Date(this.options.clock.wallNow()).toISOString(),
    });
  }
}

function isLive(status: InstanceStatus): boolean {
  return status !== 'suspect' && status !== 'stale';
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

/**
 * A component's status from its live (not stale) instances: missing with none,
 * unhealthy when all are, degraded when any is not healthy (a suspect one counts
 * as degraded), healthy otherwise.
 */
function componentStatus(entry: ComponentEntry): ComponentStatus {
  let live = 0;
  let unhealthy = 0;
  let notHealthy = 0;
  for (const t of entry.instances.values()) {
    if (t.status === 'stale') continue;
    live++;
    if (t.status === 'unhealthy') unhealthy++;
    if (t.status !== 'healthy') notHealthy++;
  }
  if (live === 0) return 'missing';
  if (unhealthy === live) return 'unhealthy';
  return notHealthy > 0 ? 'degraded' : 'healthy';
}

function formatAgo(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

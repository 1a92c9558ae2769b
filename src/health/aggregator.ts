import type { Clock } from '../clock.js';
import { PolicyConvergence } from './convergence.js';
import { GRACE_REASON } from './grace-reason.js';
import type { Heartbeat } from './heartbeat-payload.js';
import { DEFAULT_MAX_PER_COMPONENT, InstanceTable, isLive, keyOf, type ComponentEntry, type ComponentStatus, type InstanceChange, type OverallStatus, type Role, type Tracked } from './instances.js';
import { componentStatus, overallVerdict } from './verdict.js';
import { componentReason, formatSeconds, instanceView, instanceWhy, type ComponentView, type RosterDisagreement, type StatusView } from './views.js';

/**
 * The aggregated view of everyone's heartbeats: a pure state machine over a
 * clock. It does no I/O: heartbeats come in through `ingest`, time moves
 * through `tick`, the bus connection through `setConnected` and
 * `setCutOff`, and every change of status goes out, exactly once, through
 * `onTransition`. Its parts: the instance table (tracking, restarts, room:
 * instances.ts), the status rules (components, overall: verdict.ts), policy
 * convergence (convergence.ts), and the views and their wording (views.ts).
 */

export type { ComponentStatus, InstanceStatus, OverallStatus, Role } from './instances.js';
export type { ConvergenceView } from './convergence.js';
export type { ComponentView, InstanceView, RosterDisagreement, StatusView } from './views.js';

export interface Transition {
  scope: 'instance' | 'component' | 'overall';
  component: string | null;
  instance: string | null;
  /** null when the subject first appears. */
  from: string | null;
  /** `gone` when an instance or an observed component is removed. */
  to: string;
  reason: TransitionReason;
  /** Why, in words a person reads: "no heartbeat for 2.5 intervals", "2 of 3 instances stale". */
  why: string;
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
  | 'evicted' // dropped to make room under the instance caps
  | 'instances' // a component's status follows its instances
  | 'missing' // a component with no live instance
  | 'aggregate' // the overall status follows the components
  | 'disconnected' // the sentinel itself lost the bus, or is cut off from it
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
/**
 * A sweep this much later than the last one means the sentinel itself was
 * paused (GC, CPU throttling, `docker pause`): the heartbeats that arrived
 * meanwhile are still unread, so silence is judged again from now on.
 */
export const PAUSE_AFTER = 1000; // ms
/** The sentinel is cut off when it has not heard its own heartbeat for this many of its intervals. */
export const SELF_SILENT_INTERVALS = 2;
/** Components named in the overall reason before it says "and N more". */

export interface AggregatorOptions {
  clock: Clock;
  /** The aggregator's own interval: the grace after start and reconnect, and the default for senders that do not say. */
  intervalMs: number;
  required: readonly string[];
  optional: readonly string[];
  maxInstances: number;
  /** Instances tracked per component; a rostered component's live ones that keep beating (heard twice) are never displaced. */
  maxPerComponent?: number;
  /** The longest interval a sender may have its silence judged against, whatever it declares. */
  maxIntervalMs?: number;
  /** The sentinel's own (component, instance): when its heartbeats stop coming back, it is cut off. */
  self?: { component: string; instance: string };
  onTransition: (t: Transition) => void;
  /** The sweep ran `gapMs` after the previous one: the process was paused. */
  onPause?: (gapMs: number) => void;
  /** Live sentinels came to disagree on the roster (or agree again: null). */
  onRosterDisagreement?: (disagreement: RosterDisagreement | null) => void;
}

export type IngestOutcome = 'tracked' | 'left' | 'ignored' | 'refused';

export class HealthAggregator {
  private readonly table: InstanceTable;
  private readonly dirty = new Set<string>();
  /** The rostered components (required and optional), which never leave the view. */
  private readonly roster: ComponentEntry[];
  /** Observed (not rostered) components that are unhealthy: they make the system degraded. */
  private readonly observedUnhealthy = new Set<string>();
  /** Components seen lately, so that a new instance after a clean leave is still a restart. */
  private readonly recentComponents = new Map<string, true>();
  private readonly convergence = new PolicyConvergence();
  private connected = false;
  /** Why the bus is stalled (the server does not answer), as the monitor found, if it is. */
  private stalled: string | undefined;
  /** Why the sentinel's own heartbeats do not come back, if they do not. */
  private selfSilent: string | undefined;
  /** The grace after start or reconnect has not been closed yet. */
  private graceOpen = true;
  private graceUntil: number;
  /** When the grace began: a component heard since then is known again. */
  private graceFrom: number;
  /** Silence is judged from here at the earliest: the last (re)connection, or the end of a pause. */
  private silenceFrom: number;
  private lastTickAt: number;
  /** Tracked instances that send a roster: aggregating sentinels. */
  private readonly aggregators = new Set<Tracked>();
  private disagreement: RosterDisagreement | null = null;
  private disagreementKey = '';
  private overallStatus: OverallStatus = 'unknown';
  private overallReason = 'starting: waiting for the first interval';

  constructor(private readonly options: AggregatorOptions) {
    const now = options.clock.now();
    this.graceUntil = now + options.intervalMs;
    this.graceFrom = now;
    this.silenceFrom = now;
    this.lastTickAt = now;
    const roles = new Map<string, Role>();
    for (const name of options.optional) roles.set(name, 'optional');
    // Required wins if a name is in both lists.
    for (const name of options.required) roles.set(name, 'required');
    this.table = new InstanceTable({
      maxInstances: options.maxInstances,
      maxPerComponent: options.maxPerComponent ?? DEFAULT_MAX_PER_COMPONENT,
      roles,
      onChange: (change) => this.instanceChanged(change),
    });
    this.roster = [...this.table.components.values()];
    for (const entry of this.roster) this.dirty.add(entry.name);
  }

  get trackedCount(): number {
    return this.table.size;
  }

  get overall(): OverallStatus {
    return this.overallStatus;
  }

  get rosterDisagreement(): RosterDisagreement | null {
    return this.disagreement;
  }

  /** The bus connection came up (start or reconnect) or went down. */
  setConnected(connected: boolean): void {
    this.connected = connected;
    if (connected) this.resume(true);
    this.reconcile();
  }

  /**
   * Connected, but the server does not answer (`reason`: it is paused or
   * overloaded), or it answers again (undefined). While the sentinel is cut
   * off, by this or because its own heartbeats do not come back, the view is
   * `unknown` and nobody's silence is judged: the bus's stall must not become
   * everyone's failure.
   */
  setStalled(reason: string | undefined): void {
    this.setCutOff(() => {
      this.stalled = reason;
    });
  }

  /** Why the sentinel is cut off from the bus while connected, if it is. */
  get cutOff(): string | undefined {
    return this.stalled ?? this.selfSilent;
  }

  private setCutOff(change: () => void): void {
    const before = this.cutOff;
    change();
    if (before === this.cutOff) return;
    if (before !== undefined && this.cutOff === undefined) this.resume(false);
    this.reconcile();
  }

  /** The revision now in force, as announced on the bus; convergence is measured from now. */
  setPolicy(revision: string | null): void {
    this.convergence.set(revision, this.options.clock.now(), this.options.clock.wallNow());
    this.checkConvergence();
  }

  /** Takes in one heartbeat (already validated). */
  ingest(hb: Heartbeat): IngestOutcome {
    const { clock } = this.options;
    const now = clock.now();
    const instance = hb.instance ?? hb.component;
    const tracked = this.table.get(hb.component, instance);
    const intervalMs = Math.min(hb.intervalMs ?? this.options.intervalMs, this.options.maxIntervalMs ?? Number.POSITIVE_INFINITY);

    if (hb.state === 'stopping') {
      if (!tracked) return 'ignored';
      tracked.lastSeenWall = clock.wallNow();
      this.table.remove(tracked, 'leave');
      this.reconcile();
      return 'left';
    }
    if (!tracked) {
      if (!this.table.makeRoom(hb.component)) {
        this.reconcile(false);
        return 'refused';
      }
      // Heard before (now or lately): a new instance is that component restarting, not a new service.
      const entry = this.table.components.get(hb.component);
      const known = (entry !== undefined && entry.instances.size > 0) || this.recentComponents.has(hb.component);
      this.remember(hb.component);
      this.table.add(hb, instance, now, clock.wallNow(), intervalMs, known);
    } else {
      const before = { status: tracked.status, state: tracked.state };
      this.table.heard(tracked, hb, now, clock.wallNow(), intervalMs);
      // A healthy beat after a healthy one in the same state, with no roster, changes no verdict and no
      // reason: the next tick reconciles its component, as it would a silence. Most beats are these.
      if (tracked.status === 'healthy' && before.status === 'healthy' && tracked.state === before.state && hb.roster === undefined && this.selfSilent === undefined) {
        this.dirty.add(hb.component);
        return 'tracked';
      }
    }
    this.dirty.add(hb.component);
    if (this.selfSilent !== undefined && this.isSelf(hb.component, instance)) {
      this.setCutOff(() => {
        this.selfSilent = undefined;
      });
    }
    // Convergence is a scan of every instance: judged on the next tick (or view), not per heartbeat.
    this.reconcile(false);
    return 'tracked';
  }

  /** Judges silence against each sender's interval. Call it often (every ~100 ms). */
  tick(): void {
    const now = this.options.clock.now();
    const gap = now - this.lastTickAt;
    this.lastTickAt = now;
    if (!this.connected) return;
    if (gap > PAUSE_AFTER) {
      // Paused: the heartbeats that came meanwhile are still unread. Judge from now, after reading them.
      this.silenceFrom = now;
      this.options.onPause?.(gap);
    }
    this.judgeSelf(now);
    if (this.cutOff === undefined) {
      for (const t of [...this.table.all()]) this.judge(t, now);
    }
    this.reconcile();
  }

  private judge(t: Tracked, now: number): void {
    if (t.status === 'stale') {
      if (now - t.lastSeen > Math.max(FORGET_AFTER_MIN, FORGET_AFTER_INTERVALS * t.intervalMs)) this.table.remove(t, 'expired');
      return;
    }
    const silent = now - Math.max(t.lastSeen, this.silenceFrom);
    const staleAfter = STALE_AFTER_INTERVALS * t.intervalMs + STALE_MARGIN;
    const suspectAfter = SUSPECT_AFTER_INTERVALS * t.intervalMs;
    if (silent <= suspectAfter || (t.status === 'suspect' && silent <= staleAfter)) return;
    // Silent while a newer instance of the same component is alive: it was restarted, not lost.
    if (this.table.replacedBy(t)) {
      this.table.remove(t, 'restart');
      return;
    }
    this.table.fallSilent(t, silent > staleAfter ? 'stale' : 'suspect');
  }

  /** Our own heartbeats not coming back while connected: cut off (they come back in milliseconds on a live bus). */
  private judgeSelf(now: number): void {
    const self = this.options.self;
    const t = self ? this.table.get(self.component, self.instance) : undefined;
    if (!t || this.selfSilent !== undefined) return;
    const silent = now - Math.max(t.lastSeen, this.silenceFrom);
    if (silent > SELF_SILENT_INTERVALS * t.intervalMs + STALE_MARGIN) {
      this.setCutOff(() => {
        this.selfSilent = `cut off from the bus: the sentinel has not heard its own heartbeat for ${formatSeconds(silent)}`;
      });
    }
  }

  /** Back on the bus, or back from a pause: every instance gets a full interval to be heard again. */
  private resume(grace: boolean): void {
    const now = this.options.clock.now();
    this.silenceFrom = now;
    if (grace) {
      // Our own outage must not become everyone else's failure: one full interval before judging silence.
      this.graceUntil = now + this.options.intervalMs;
      this.graceFrom = now;
      this.graceOpen = true;
    }
  }

  private isSelf(component: string, instance: string): boolean {
    const self = this.options.self;
    return self !== undefined && keyOf(self.component, self.instance) === keyOf(component, instance);
  }

  /** The view for a status reply; one component's when `component` is given. */
  view(component?: string): StatusView {
    this.checkConvergence();
    const now = this.options.clock.now();
    const names = component !== undefined ? [component] : [...this.table.components.keys()].sort();
    const components: ComponentView[] = names.map((name) => {
      const entry = this.table.components.get(name);
      if (!entry) return { name, role: 'observed', status: 'missing', reason: `never heard: no heartbeat of ${name} since this sentinel started`, instances: [] };
      return {
        name,
        role: entry.role,
        status: entry.status ?? 'unknown',
        reason: componentReason(entry),
        instances: [...entry.instances.values()].map((t) => instanceView(t, now)),
      };
    });
    return {
      status: this.overallStatus,
      reason: this.overallReason,
      rosters: this.disagreement,
      components,
      missing: this.roster.filter((c) => c.role === 'required' && c.status === 'missing').map((c) => c.name),
      policy: this.convergence.view(this.table.all(), now),
      tracked: this.table.size,
    };
  }

  /** Every tracked instance (the rollout's canary and ledger read them). */
  instances(): IterableIterator<Tracked> {
    return this.table.all();
  }

  /** Each component's status and role in name order, as `view()` lists them, without building instance views (for metrics). */
  componentStatuses(): { name: string; role: Role; status: ComponentStatus | 'unknown' }[] {
    return [...this.table.components.keys()].sort().map((name) => {
      const entry = this.table.components.get(name) as ComponentEntry;
      return { name, role: entry.role, status: entry.status ?? 'unknown' };
    });
  }

  /** Live instances that report a policy revision, and how many run the one in force (for metrics). */
  policyCounts(): { reporting: number; onRevision: number } {
    return this.convergence.counts(this.table.all());
  }

  private checkConvergence(): void {
    this.convergence.check(this.table.all(), this.options.clock.now(), this.options.clock.wallNow());
  }

  /** Bounded memory of component names, newest last. */
  private remember(name: string): void {
    this.recentComponents.delete(name);
    this.recentComponents.set(name, true);
    if (this.recentComponents.size > RECENT_COMPONENTS) {
      this.recentComponents.delete(this.recentComponents.keys().next().value as string);
    }
  }

  private instanceChanged({ t, from, to, reason }: InstanceChange): void {
    this.dirty.add(t.component);
    if (to === 'gone' || t.roster === undefined) this.aggregators.delete(t);
    else this.aggregators.add(t);
    this.options.onTransition({
      scope: 'instance',
      component: t.component,
      instance: t.instance,
      from,
      to,
      reason,
      why: instanceWhy(t, to, reason),
      lastSeenAt: new Date(t.lastSeenWall).toISOString(),
      seq: t.seq,
      detectedAt: new Date(this.options.clock.wallNow()).toISOString(),
    });
  }

  /**
   * Recomputes the components that changed, then the overall status; emits
   * what moved. Cheap unless `convergence` asks for the (linear) policy check.
   */
  private reconcile(convergence = true): void {
    const now = this.options.clock.now();
    // The grace ends at one interval, or as soon as every rostered component has been heard since it began:
    // then nothing is left to wait for (a probe right after start needs no start period for that).
    if (now < this.graceUntil && this.rosterHeardSince(this.graceFrom)) this.graceUntil = now;
    const inGrace = now < this.graceUntil;
    this.checkRosters();
    for (const name of this.dirty) {
      const entry = this.table.components.get(name);
      if (!entry) continue;
      const next = componentStatus(entry);
      if (entry.role === 'observed' && entry.instances.size === 0) {
        // An observed component with nothing left is dropped from the view.
        this.table.forget(entry);
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
      for (const entry of this.roster) {
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
        reason: !this.connected || this.cutOff !== undefined ? 'disconnected' : inGrace ? 'grace' : 'aggregate',
        why: reason,
        lastSeenAt: null,
        seq: null,
        detectedAt: new Date(this.options.clock.wallNow()).toISOString(),
      });
    }
    if (convergence) this.checkConvergence();
  }

  /** Whether the live aggregating sentinels judge by the same roster; tells once per change. */
  private checkRosters(): void {
    const live = [...this.aggregators].filter((t) => isLive(t.status) && t.roster);
    const digests = new Set(live.map((t) => t.roster?.digest));
    const disagreement =
      digests.size > 1
        ? {
            sentinels: live
              .map((t) => ({ component: t.component, instance: t.instance, ...(t.roster as NonNullable<Tracked['roster']>) }))
              .sort((a, b) => (a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : 0)),
          }
        : null;
    const key = disagreement ? disagreement.sentinels.map((s) => `${s.instance}=${s.digest}`).join(',') : '';
    this.disagreement = disagreement;
    if (key !== this.disagreementKey) {
      this.disagreementKey = key;
      this.options.onRosterDisagreement?.(disagreement);
    }
  }

  /** Every rostered component has a live instance heard at or after `since` (a scan of live instances, stopped at the first). */
  private rosterHeardSince(since: number): boolean {
    for (const entry of this.roster) {
      let heard = false;
      for (const t of entry.liveSet) {
        if (t.lastSeen >= since) {
          heard = true;
          break;
        }
      }
      if (!heard) return false;
    }
    return true;
  }

  private overallNow(inGrace: boolean): [OverallStatus, string] {
    if (!this.connected) return ['unknown', 'the sentinel is not connected to the bus'];
    if (this.cutOff !== undefined) return ['unknown', this.cutOff];
    if (inGrace) return ['unknown', GRACE_REASON];
    return overallVerdict(this.roster, this.disagreement, this.observedUnhealthy);
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
      why: to === 'gone' ? 'no instance left' : componentReason(entry, to as ComponentStatus),
      lastSeenAt: lastSeen > 0 ? new Date(lastSeen).toISOString() : null,
      seq: null,
      detectedAt: new Date(this.options.clock.wallNow()).toISOString(),
    });
  }
}

export { isLive };

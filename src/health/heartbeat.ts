import type { Logger } from 'pino';
import type { Flusher, Publisher } from '../protocol/ports.js';
import { encodeEnvelope, makeEnvelope } from '../protocol/envelope.js';
import type { Clock, TimerHandle } from '../clock.js';
import { messageOf } from '../errors.js';
import { SUBJECTS } from '../protocol/topics.js';
import type { SigningKey } from '../trust/ed25519.js';
import { signHeartbeat } from './heartbeat-trust.js';
import { SIDECAR_DETAIL } from './check-specs.js';
import { withFailure, type CheckRunner, type NeighbourFacts } from './checks.js';
import { MAX_POLICY_ERROR, type CheckDetail, type LifecycleState, type PolicyFacts, type ReportedStatus, type Roster, type SentinelHeartbeat, type SidecarDetail } from './heartbeat-payload.js';

/** Heartbeats go out every interval, give or take this fraction, so replicas do not beat in step. */
export const JITTER = 0.1;
/**
 * The envelope ids of this many of our latest heartbeats are kept: one that
 * comes back from the bus under our name with another id was not ours. Ours
 * come back within milliseconds, and we publish a few per interval at most.
 */
export const OWN_IDS_KEPT = 16;

/** A check evaluated at the moment of publishing, from the daemon's own state. */
export interface LiveCheck {
  name: string;
  required: boolean;
  test: () => { ok: boolean; message?: string };
}

export interface HeartbeatOptions {
  bus: Publisher & Flusher;
  clock: Clock;
  component: string;
  instance: string;
  version: string;
  intervalMs: number;
  /** Checks that take time (the container's, event-loop lag): their latest results are published. */
  runner: CheckRunner;
  /** The sentinel's own checks (bus, policy), evaluated live at each heartbeat. */
  live: readonly LiveCheck[];
  policyRevision: () => string | null;
  /** What else it says of its policy set (a sidecar: files its consumer never reads, when delivered, a failure, the hook's result). */
  policyFacts?: () => PolicyFacts;
  /** The roster this sentinel judges by (aggregating sentinels only). */
  roster?: Roster;
  /**
   * Whose health the heartbeat tells: its own (the sentinel: its own checks,
   * the default), or its neighbour's (a sidecar). A neighbour's health is known
   * only from the checks of it: with none, or before each has answered once,
   * the status is `unknown`, never healthy from no evidence (a failing required
   * check still makes it unhealthy). Speaking for a neighbour, the heartbeat's
   * `version` and `uptime` are the neighbour's, from its HealthCheck, when a
   * check read them; its own are in `details.sidecar` (always).
   */
  speaksFor?: 'self' | 'neighbour';
  log: Logger;
  random?: () => number;
  /** Signs every heartbeat, for sentinels that protect this component ([health.trust]). */
  signingKey?: SigningKey | undefined;
}

/**
 * Publishes this process's heartbeat on `nachos.system.health`: every
 * interval (jittered), at once on start and after every reconnect, at once
 * whenever its own status changes, and a last one with `state: stopping`
 * before it leaves, so that others see a clean leave rather than a failure.
 */
export class HeartbeatPublisher {
  private seq = 0;
  private state: LifecycleState = 'starting';
  private lastStatus: ReportedStatus | undefined;
  /** The policy state the last heartbeat said (JSON): a change is news at once. */
  private lastPolicy: string | undefined;
  private timer: TimerHandle | undefined;
  private readonly startedAt: number;
  /** The envelope ids of our latest heartbeats, a ring of OWN_IDS_KEPT. */
  private readonly ownIds: string[] = [];
  private nextOwnId = 0;
  /** Monotonic time of the last loop turn: /healthz says the loop is alive while it is recent. */
  lastTickAt: number;
  published = 0;

  constructor(private readonly options: HeartbeatOptions) {
    this.startedAt = options.clock.now();
    this.lastTickAt = this.startedAt;
  }

  /** Publishes at once, then every interval; checks run on each turn. */
  start(): void {
    this.publish();
    this.turn();
  }

  /** Publishes now if the status or the policy revision differs from the last heartbeat's (after a check or a reload). */
  publishIfChanged(): void {
    if (this.evaluate().status !== this.lastStatus || JSON.stringify(this.policyState()) !== this.lastPolicy) this.publish();
  }

  /** The bus is back: whoever listens lost our heartbeats meanwhile. */
  onReconnect(): void {
    this.publish();
  }

  /** Whether a heartbeat heard under our name is one we published (among our latest): the port the health monitor asks. */
  isOwnHeartbeat(id: string): boolean {
    return this.ownIds.includes(id);
  }

  /** The loop is alive when it turned within two intervals and a second. */
  get alive(): boolean {
    return this.options.clock.now() - this.lastTickAt < 2 * this.options.intervalMs + 1000;
  }

  /** The last heartbeat: `state: stopping`, flushed to the server. Stops the loop. */
  async stop(flushTimeoutMs = 500): Promise<void> {
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.options.runner.stop();
    this.state = 'stopping';
    this.publish();
    if (this.options.bus.connected) {
      await Promise.race([this.options.bus.flush().catch(() => undefined), new Promise((r) => setTimeout(r, flushTimeoutMs).unref())]);
    }
  }

  /** The heartbeat this process would publish now. */
  payload(): SentinelHeartbeat {
    const { component, instance, version, intervalMs, clock, speaksFor = 'self' } = this.options;
    const { status, checks, details, neighbour } = this.evaluate();
    const uptime = Math.round((clock.now() - this.startedAt) / 100) / 10;
    const relayed = speaksFor === 'neighbour';
    if (relayed) {
      const own: SidecarDetail = { required: false, message: `nachos-sentinel sidecar ${version}, up ${uptime} s`, version, uptime };
      details[SIDECAR_DETAIL] = own;
    }
    return {
      schemaVersion: 1,
      status,
      component,
      // Whose version and uptime: the component's. A sidecar's are its neighbour's when the neighbour said them.
      version: (relayed ? neighbour.version : undefined) ?? version,
      uptime: (relayed ? neighbour.uptime : undefined) ?? uptime,
      checks,
      instance,
      seq: this.seq,
      intervalMs,
      state: this.state,
      policy: this.policyState(),
      details,
      ...(this.options.roster ? { roster: this.options.roster } : {}),
    };
  }

  private policyState(): SentinelHeartbeat['policy'] {
    const { unread = [], failure, hook, deliveredAt } = this.options.policyFacts?.() ?? {};
    const bounded = (text: string) => (text.length > MAX_POLICY_ERROR ? `${text.slice(0, MAX_POLICY_ERROR - 1)}…` : text);
    return {
      revision: this.options.policyRevision(),
      ...(unread.length > 0 ? { unread: unread.slice(0, 64) } : {}),
      ...(deliveredAt ? { deliveredAt } : {}),
      ...(failure ? { failure: { revision: failure.revision, error: bounded(failure.error) } } : {}),
      ...(hook ? { hook: { ...hook, ...(hook.error !== undefined ? { error: bounded(hook.error) } : {}) } } : {}),
    };
  }

  private evaluate(): { status: ReportedStatus; checks: Record<string, 'ok' | 'error'>; details: Record<string, CheckDetail>; neighbour: NeighbourFacts } {
    const { runner, speaksFor = 'self' } = this.options;
    // A neighbour's check named `sidecar` would take the place of our own facts in the details.
    const fromRunner = runner.snapshot(speaksFor === 'neighbour' ? [SIDECAR_DETAIL] : []);
    let status: ReportedStatus = fromRunner.status;
    // Of a neighbour, no check (or one not answered yet) is no evidence: unknown, unless what did answer is unhealthy.
    if (speaksFor === 'neighbour' && (runner.size === 0 || !runner.complete) && status !== 'unhealthy') status = 'unknown';
    const checks = { ...fromRunner.checks };
    const details = { ...fromRunner.details };
    for (const check of this.options.live) {
      const result = check.test();
      checks[check.name] = result.ok ? 'ok' : 'error';
      details[check.name] = { required: check.required, ...(result.message ? { message: result.message } : {}) };
      if (!result.ok) status = withFailure(status, check.required);
    }
    return { status, checks, details, neighbour: fromRunner.neighbour };
  }

  private turn(): void {
    const { clock, intervalMs, runner } = this.options;
    this.lastTickAt = clock.now();
    void runner.runAll().then(() => {
      if (this.state === 'starting' && runner.complete) {
        this.state = 'running';
        this.publish();
      }
    });
    const random = this.options.random ?? Math.random;
    const delay = intervalMs * (1 - JITTER + 2 * JITTER * random());
    this.timer = clock.setTimeout(() => {
      this.publish();
      this.turn();
    }, delay);
  }

  private publish(): void {
    const { bus, component, log } = this.options;
    if (!bus.connected) return; // published again on reconnect
    this.seq++;
    const payload = this.payload();
    try {
      const envelope = makeEnvelope(SUBJECTS.health, component, payload);
      this.ownIds[this.nextOwnId] = envelope.id;
      this.nextOwnId = (this.nextOwnId + 1) % OWN_IDS_KEPT;
      bus.publish(SUBJECTS.health, encodeEnvelope(this.options.signingKey ? signHeartbeat(envelope, this.options.signingKey) : envelope));
      this.published++;
      if (payload.status !== this.lastStatus) {
        log.info({ status: payload.status, checks: payload.checks, previous: this.lastStatus ?? null }, 'own health status');
      }
      this.lastStatus = payload.status;
      this.lastPolicy = JSON.stringify(payload.policy);
    } catch (err) {
      log.warn({ error: messageOf(err) }, 'could not publish a heartbeat');
    }
  }
}

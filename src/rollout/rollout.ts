import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Announcement } from '../bus/policy-announcer.js';
import type { Clock, TimerHandle } from '../clock.js';
import { messageOf } from '../errors.js';
import type { ReportedStatus } from '../health/heartbeat-payload.js';
import { isLive, type InstanceStatus, type Tracked } from '../health/instances.js';
import { announcementHead, makeEntry, ruleIndex, type EntryKind, type RuleIndex } from '../history/entry.js';
import { rebuildSnapshot } from '../history/rebuild.js';
import { Retrier } from '../history/retry.js';
import { HistoryError, newestInForce, resolveReference, type Halt, type HistoryStore, type Pin, type RolloutRecord } from '../history/store.js';
import type { ReloadReason, RolloutEvent, RolloutEventName } from '../policy/announcements.js';
export type { RolloutEvent, RolloutEventName } from '../policy/announcements.js';
import type { BuildOptions, Rejection, Snapshot } from '../policy/snapshot.js';
import { inAudience } from '../protocol/audience.js';
import type { Envelope } from '../protocol/envelope.js';
import type { SigningKey } from '../trust/ed25519.js';
import { checkMessageSignature, signMessage, type SignableMessage, type SignatureCheck } from '../trust/signed-message.js';
import { failingCheck, rolloutView, type CanaryState, type RolloutView } from '../health/rollout-ledger.js';

/** Rollout events are signed under their own purpose: never to be taken for a reload or a heartbeat. */
export const ROLLOUT_SIGNED_PREFIX = 'nachos-sentinel rollout v1\n';

/** Signs a rollout event's envelope (the signing key of reloads, its own purpose). */
export function signRolloutEvent<E extends Envelope<object>>(envelope: E, key: SigningKey): E {
  return signMessage(envelope as unknown as SignableMessage, ROLLOUT_SIGNED_PREFIX, key) as unknown as E;
}

/** Checks a rollout event's signature against the keys trusted (those of reloads). Never throws. */
export function checkRolloutEvent(message: unknown, publicKeys: readonly string[]): SignatureCheck {
  return checkMessageSignature(message, ROLLOUT_SIGNED_PREFIX, publicKeys);
}

/** How often a running canary is judged. */
export const CANARY_TICK = 200; // ms

/** A refusal of an operator's request, with the ADR-32 code to answer with. */
export class RolloutRefusal extends Error {
  constructor(
    readonly code: 400 | 404 | 409 | 503,
    message: string,
  ) {
    super(message);
    this.name = 'RolloutRefusal';
  }
}

export interface RolloutOptions {
  announcer: {
    announce(snapshot: Snapshot, reason: ReloadReason, scope?: { replaces?: string | undefined; excludes?: readonly string[] | undefined }): void;
    announceCanary(snapshot: Snapshot | undefined, audience?: readonly string[]): void;
  };
  /** Where the history is kept (or set later, by useHistory); none: no history, no rollback. */
  history?: HistoryStore | undefined;
  /** Component names (or `component/instance`) that get a new set first; empty: everyone at once. */
  canary: readonly string[];
  /** How long every canary must hold its health after delivery before everyone gets the set. */
  bakeMs: number;
  /** How a set read back from the history is validated again (today's rules). */
  build: BuildOptions;
  /** The instances the health view tracks (the canary's health, the ledger). */
  instances: () => Iterable<Tracked>;
  /** The components whose instances count in the ledger (the required ones). */
  required: readonly string[];
  clock: Clock;
  log: Logger;
  /** Who records (`component/instance`). */
  by: string;
  /** The key reloads are signed with, if they are. */
  signer: string | null;
}

interface Member {
  key: string;
  name: string;
  /** Its status the last time it was seen before the canary's set (the baseline "worse" is judged against). */
  before?: InstanceStatus;
  /** Monotonic ms when it was first seen on the canary's set. */
  deliveredAt?: number;
}

interface Run {
  candidate: Snapshot;
  previous: Snapshot;
  audience: string[];
  phase: 'delivering' | 'baking';
  startedAt: number;
  bakeStartedAt?: number;
  members: Map<string, Member>;
}

/** An entry waiting for its statement's first publication, to be recorded with it. */
interface PendingEntry {
  revision: string;
  canary: boolean;
  record: (announcement: Record<string, unknown> | undefined) => void;
}

const RANK: Record<ReportedStatus, number> = { healthy: 0, unknown: 0, degraded: 1, unhealthy: 2 };

/**
 * What is in force, for whom: the policy directory proposes (each set the
 * reloader accepts), and the rollout decides what the announcer states. Without
 * a canary, a new set is in force for everyone at once (today's behaviour). With
 * one, it goes to the canaries first; when every live canary has delivered it
 * and none got worse during the bake, everyone gets it; when one gets worse, the
 * canaries get the previous set back at once and nobody else ever gets it. An
 * operator's rollback puts an earlier set from the history back in force until
 * the directory changes again (or `--release`); it survives restarts.
 * Everything it does goes into the history, and out as events.
 */
export class Rollout extends EventEmitter<{ event: [event: RolloutEvent]; changed: [] }> {
  /** The directory's set, as last accepted. */
  source: Snapshot | undefined;
  /** The set in force for everyone. */
  inForce: Snapshot | undefined;
  pin: Pin | undefined;
  halted: Halt | undefined;
  private run: Run | undefined;
  private rules: RuleIndex = new Map();
  private timer: TimerHandle | undefined;
  private restored: { pin?: Pin | undefined; halted?: Halt | undefined; newest?: string | undefined } = {};
  private readonly pending: PendingEntry[] = [];
  /** Operator requests run one at a time. */
  private queue: Promise<unknown> = Promise.resolve();
  /** History writes, in order. */
  private writes: Promise<unknown> = Promise.resolve();
  /** History writes that failed since start. */
  historyFailures = 0;
  private closed = false;
  /** The newest set the directory gave, as soon as it gives it (the queue takes them in turn). */
  private latestSource: Snapshot | undefined;
  /** Failed history reads and writes are tried again for a while. */
  readonly retrier: Retrier;
  private history: HistoryStore | undefined;
  private starting: Promise<void> | undefined;

  constructor(private readonly options: RolloutOptions) {
    super();
    this.history = options.history;
    this.retrier = new Retrier(options.clock, options.log);
  }

  /** The history, once opened. */
  useHistory(history: HistoryStore | undefined): void {
    this.history = history;
  }

  /**
   * Reads what the history says is in force (a rollback, a halted canary, the newest set for everyone):
   * the first set from the directory waits for it (with the history in JetStream, until the bus answers).
   */
  start(): Promise<void> {
    this.starting ??= this.restore();
    return this.starting;
  }

  private async restore(): Promise<void> {
    const { log } = this.options;
    const history = this.history;
    if (!history) return;
    // A rollback in force must not be undone by a restart while the history is slow to answer (a JetStream
    // cluster electing its leaders): the first set from the directory waits for it, up to a minute.
    const read = await this.retrier.run('reading the rollout state from the history', { history: history.where }, async () => {
      const record = await history.readRollout();
      const newest = newestInForce(await history.index());
      this.restored = { pin: record.pin, halted: record.halted, newest: newest?.revision };
    });
    if (!read) log.error({ history: history.where }, 'starting from the policy directory without the rollout state: a rollback or halted canary recorded there is not in force');
  }

  close(): void {
    this.closed = true;
    this.stopTicking();
    this.retrier.close();
    // Entries still waiting for a publication are recorded without it.
    for (const p of this.pending.splice(0)) p.record(undefined);
  }

  /** Waits for the work queued so far (sets, requests) and the history writes it made. */
  async flushed(): Promise<void> {
    await this.queue;
    await this.writes;
  }

  // --- the directory ---------------------------------------------------------

  /** The reloader accepted a new valid set from the directory. */
  sourceAccepted(snapshot: Snapshot): void {
    this.latestSource = snapshot;
    void this.serially(() => this.accept(snapshot)).catch((err: unknown) => this.options.log.error({ err }, 'unexpected error while putting a policy set in force'));
  }

  private async accept(snapshot: Snapshot): Promise<void> {
    const first = this.source === undefined;
    this.source = snapshot;
    if (first) {
      await this.first(snapshot);
      return;
    }
    let note: string | undefined;
    if (this.pin) {
      note = `the policy directory changed: the rollback to ${short(this.pin.revision)} is over`;
      this.options.log.warn({ revision: snapshot.revision, rolledBackTo: this.pin.revision }, `${note}; ${short(snapshot.revision)} is next`);
      this.pin = undefined;
    }
    this.halted = undefined;
    this.persist();
    this.propose(snapshot, 'change', note);
  }

  /** After a rejection, the directory is back to its set: said again only when it is the one in force. */
  sourceRecovered(snapshot: Snapshot): void {
    void this.serially(async () => {
      this.source = snapshot;
      if (this.inForce?.revision === snapshot.revision && !this.run) this.options.announcer.announce(snapshot, 'recovered', this.scope());
    });
  }

  /** The reloader refused a set: recorded, with its problems. */
  sourceRejected(rejection: Rejection): void {
    const contents = new Map<string, Buffer>();
    for (const f of rejection.files) {
      const bytes = rejection.contents?.get(f.path);
      if (bytes && f.kind === 'policy') contents.set(f.sha256, bytes);
    }
    this.record(
      {
        kind: 'rejected',
        revision: rejection.revision,
        files: rejection.files,
        rules: new Map(),
        warnings: rejection.warnings.length,
        audience: null,
        key: `rejected:${rejection.revision}:${this.inForce?.revision ?? ''}`,
        problems: rejection.problems,
        previousSet: this.inForce,
      },
      contents,
    );
  }

  /** The first set read from the directory: what the history says decides what is in force. */
  private async first(snapshot: Snapshot): Promise<void> {
    const { log } = this.options;
    await this.start();
    // The directory changed while the history was read (slow to answer: a JetStream cluster electing its
    // leaders): this set is not the directory's any more, and judged against what another replica has
    // recorded since, it would look like a step back. The newer one, next in the queue, is the first.
    if (this.latestSource !== snapshot) {
      this.source = undefined;
      return;
    }
    const { pin, halted, newest } = this.restored;
    if (pin && pin.sourceRevision === snapshot.revision) {
      const rebuilt = await this.rebuild(pin.revision);
      if (rebuilt) {
        this.pin = pin;
        this.putInForce(rebuilt, 'startup');
        log.warn({ revision: pin.revision, source: snapshot.revision }, `rolled back to ${short(pin.revision)}; the source directory holds ${short(snapshot.revision)} (the rollback of ${pin.at} holds across the restart)`);
        return;
      }
      log.error({ revision: pin.revision }, `the rollback to ${short(pin.revision)} cannot be restored; the directory's set is in force`);
    } else if (pin) {
      log.warn({ revision: snapshot.revision, rolledBackTo: pin.revision }, `the policy directory changed while the sentinel was stopped: the rollback to ${short(pin.revision)} is over`);
    }
    if (halted && halted.revision === snapshot.revision) {
      const previous = await this.rebuild(halted.previous);
      if (previous) {
        this.halted = halted;
        this.putInForce(previous, 'startup');
        log.warn({ revision: halted.revision }, `the canary of ${short(halted.revision)} halted before the restart (${halted.note}); everyone stays on ${short(halted.previous)}`);
        return;
      }
    }
    this.persist();
    if (newest === snapshot.revision) {
      // The set in force before the restart: nothing new to record.
      this.putInForce(snapshot, 'startup');
      return;
    }
    // The directory changed while the sentinel was stopped. The set in force before is what the new one is
    // compared with, and, with a canary, what everyone keeps until the canaries have held the new one.
    const before = newest !== undefined ? await this.rebuild(newest) : undefined;
    if (before) {
      this.setInForce(before);
      if (this.options.canary.length > 0) this.options.announcer.announce(before, 'startup', this.scope());
    }
    this.propose(snapshot, 'startup');
  }

  /** A new set from the directory: to the canaries first when there are some, else to everyone. */
  private propose(snapshot: Snapshot, reason: ReloadReason, note?: string): void {
    const { canary } = this.options;
    const inForce = this.inForce;
    if (canary.length > 0 && inForce && inForce.revision !== snapshot.revision) {
      this.startCanary(snapshot, inForce);
      return;
    }
    this.endRun();
    if (inForce?.revision !== snapshot.revision) this.recordInForce('accepted', snapshot, inForce, { ...(note !== undefined ? { note } : {}) });
    this.putInForce(snapshot, reason);
  }

  // --- what is stated --------------------------------------------------------

  private setInForce(snapshot: Snapshot): void {
    this.inForce = snapshot;
    this.rules = ruleIndex(snapshot.policies);
  }

  /** `snapshot` in force for everyone, announced so. */
  private putInForce(snapshot: Snapshot, reason: ReloadReason): void {
    this.setInForce(snapshot);
    this.options.announcer.announce(snapshot, reason, this.scope());
    this.emit('changed');
  }

  /** What the statement for everyone says besides its set: what it replaces, and whom it excludes while a canary runs. */
  private scope(): { replaces?: string; excludes?: readonly string[] } {
    const replaces = this.pin?.replaces ?? this.halted?.revision;
    return { ...(replaces !== undefined ? { replaces } : {}), ...(this.run ? { excludes: this.run.audience } : {}) };
  }

  // --- the canary ------------------------------------------------------------

  private startCanary(candidate: Snapshot, previous: Snapshot): void {
    const { canary, clock, log } = this.options;
    const superseded = this.run?.candidate.revision;
    this.run = { candidate, previous, audience: [...canary], phase: 'delivering', startedAt: clock.now(), members: new Map() };
    this.recordInForce('accepted', candidate, previous, { audience: [...canary], canary: true });
    // Everyone else keeps the set in force, stated so that its refreshes never reach the canaries.
    this.options.announcer.announce(previous, 'refresh', this.scope());
    this.options.announcer.announceCanary(candidate, canary);
    const message = `canary: ${short(candidate.revision)} to ${canary.join(', ')} first${superseded ? ` (instead of ${short(superseded)})` : ''}; everyone else stays on ${short(previous.revision)}`;
    log.info({ revision: candidate.revision, audience: canary, previous: previous.revision }, message);
    this.event('canary', candidate.revision, previous.revision, [...canary], message);
    this.emit('changed');
    // The canaries as they are now, before the set reaches them: the baseline of their health.
    this.judge();
    this.startTicking();
  }

  private startTicking(): void {
    if (this.timer || this.closed) return;
    const tick = () => {
      this.timer = undefined;
      if (!this.run || this.closed) return;
      this.judge();
      if (this.run) this.timer = this.options.clock.setTimeout(tick, CANARY_TICK);
    };
    this.timer = this.options.clock.setTimeout(tick, CANARY_TICK);
  }

  private stopTicking(): void {
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Judges the running canary: who delivered, who got worse, whether the bake is over. */
  judge(): void {
    const run = this.run;
    if (!run) return;
    const { clock, bakeMs } = this.options;
    const now = clock.now();
    const revision = run.candidate.revision;
    const seen = new Set<string>();
    let live = 0;
    let delivered = 0;
    for (const t of this.options.instances()) {
      if (!inAudience(run.audience, t)) continue;
      seen.add(t.key);
      let member = run.members.get(t.key);
      if (!member) {
        member = { key: t.key, name: `${t.component}/${t.instance}` };
        run.members.set(t.key, member);
      }
      const facts = t.policyFacts;
      if (facts?.failure?.revision === revision) return this.halt(`${member.name} could not take ${short(revision)}: ${facts.failure.error}`);
      if (member.deliveredAt === undefined) {
        // Before the set: what its health is judged against. A canary first seen already on the set is
        // judged against how it was then.
        if (t.policyRevision !== revision) member.before = t.status;
        else if (isLive(t.status)) {
          member.deliveredAt = now;
          member.before ??= t.status;
        }
      }
      if (member.deliveredAt !== undefined) {
        const after = `${Math.round((now - member.deliveredAt) / 1000)} s after delivery of ${short(revision)}`;
        if (facts?.hook?.revision === revision && facts.hook.state === 'failed') return this.halt(`${member.name}: the reload hook failed ${after}: ${facts.hook.error ?? 'failed'}`);
        if (worse(member.before, t.status)) return this.halt(`${member.name} ${t.status} ${after}${failingCheck(t)}`);
        if (t.policyRevision !== revision) return this.halt(`${member.name} went back to ${short(t.policyRevision ?? 'none')} ${after}`);
      }
      if (t.status !== 'stale' && t.status !== 'suspect') {
        live++;
        if (member.deliveredAt !== undefined) delivered++;
      }
    }
    // A canary that delivered and is no longer tracked left, or went silent long enough to be dropped.
    for (const member of run.members.values()) {
      if (!seen.has(member.key) && member.deliveredAt !== undefined) return this.halt(`${member.name} went away ${Math.round((now - member.deliveredAt) / 1000)} s after delivery of ${short(revision)}`);
    }
    if (run.phase === 'delivering' && live > 0 && delivered === live) {
      run.phase = 'baking';
      run.bakeStartedAt = now;
      const message = `canary: every canary (${live}) delivered ${short(revision)}; baking for ${Math.round(bakeMs / 1000)} s`;
      this.options.log.info({ revision, canaries: live }, message);
      this.event('baking', revision, run.previous.revision, run.audience, message);
      this.emit('changed');
    }
    if (run.phase === 'baking' && now - (run.bakeStartedAt ?? now) >= bakeMs) this.release('released', `released: every canary held its health for ${Math.round(bakeMs / 1000)} s after delivery of ${short(revision)}; everyone gets it`);
  }

  /** The canary's set, to everyone. */
  private release(kind: 'released' | 'promoted', message: string, note?: string): void {
    const run = this.run;
    const candidate = run?.candidate ?? (this.halted && this.source?.revision === this.halted.revision ? this.source : undefined);
    if (!candidate) return;
    const previous = this.inForce;
    this.endRun();
    this.halted = undefined;
    this.persist();
    this.recordInForce(kind, candidate, previous, { ...(note !== undefined ? { note } : {}) });
    this.putInForce(candidate, 'change');
    this.options.log.info({ revision: candidate.revision }, message);
    this.event(kind, candidate.revision, previous?.revision ?? null, null, message);
  }

  /** The canary got worse (or an operator aborted it): its canaries get the set in force back, nobody else ever gets its set. */
  private halt(note: string, kind: 'halted' | 'aborted' = 'halted'): void {
    const run = this.run;
    if (!run) return;
    const { clock, log } = this.options;
    this.endRun();
    this.halted = { revision: run.candidate.revision, previous: run.previous.revision, note, at: new Date(clock.wallNow()).toISOString() };
    this.persist();
    // The set in force, stated anew for everyone: newer than the canary's, so the canaries take it.
    this.putInForce(run.previous, 'rollback');
    const message = `${kind}: ${note}; the canaries are given ${short(run.previous.revision)} back`;
    log.error({ revision: run.candidate.revision, previous: run.previous.revision }, message);
    this.recordInForce(kind, run.candidate, run.previous, { note, audience: run.audience, keyed: run.previous.revision });
    this.event(kind, run.candidate.revision, run.previous.revision, run.audience, message);
  }

  private endRun(): void {
    if (!this.run) return;
    this.run = undefined;
    this.stopTicking();
    this.options.announcer.announceCanary(undefined);
  }

  // --- what operators ask ----------------------------------------------------

  /** Puts an earlier set from the history back in force, until the directory changes (or `release`). */
  rollback(ref: string, note: string | undefined, requestId: string): Promise<{ revision: string; replaces: string; message: string }> {
    return this.serially(async () => {
      const { clock, log, by } = this.options;
      const history = this.history;
      if (!history) throw new RolloutRefusal(503, 'this sentinel keeps no history ([history] store = "off"): nothing to roll back to');
      const inForce = this.inForce;
      const source = this.source;
      if (!inForce || !source) throw new RolloutRefusal(409, 'no policy set is in force yet');
      let entry;
      try {
        entry = await resolveReference(history, ref);
      } catch (err) {
        throw new RolloutRefusal(404, messageOf(err));
      }
      // During a canary, the set in force may be named: the canary stops, and everyone stays on it, pinned.
      if (entry.revision === inForce.revision && !this.run) throw new RolloutRefusal(409, `revision ${short(entry.revision)} is already in force`);
      const rebuilt = await rebuildSnapshot(entry, history, this.options.build);
      if (!rebuilt.ok) throw new RolloutRefusal(409, `cannot roll back to ${short(entry.revision)}: ${rebuilt.why}`);
      const replaces = this.run?.candidate.revision ?? inForce.revision;
      this.endRun();
      this.halted = undefined;
      this.pin = { revision: entry.revision, replaces, sourceRevision: source.revision, at: new Date(clock.wallNow()).toISOString(), by, ...(note ? { note } : {}) };
      // Kept before it is announced: a rollback survives a restart from the moment it is answered.
      await this.persistNow();
      this.recordInForce('rollback', rebuilt.snapshot, inForce, { replaces, ...(note ? { note } : {}), keyed: requestId });
      this.putInForce(rebuilt.snapshot, 'rollback');
      const message = `rolled back to ${short(entry.revision)} (entry #${entry.n}); the source directory holds ${short(source.revision)}${note ? `: ${note}` : ''}`;
      log.warn({ revision: entry.revision, replaces, source: source.revision, note }, message);
      this.event('rollback', entry.revision, inForce.revision, null, message);
      return { revision: entry.revision, replaces, message };
    });
  }

  /** Back to the directory's set after a rollback. */
  releaseRollback(note: string | undefined, requestId: string): Promise<{ revision: string; message: string }> {
    return this.serially(async () => {
      const pin = this.pin;
      const source = this.source;
      if (!pin || !source) throw new RolloutRefusal(409, 'no rollback is in force: the directory\'s set is');
      const previous = this.inForce;
      this.pin = undefined;
      await this.persistNow();
      this.recordInForce('release', source, previous, { ...(note ? { note } : {}), keyed: requestId });
      this.putInForce(source, 'change');
      const message = `released the rollback to ${short(pin.revision)}: the directory's ${short(source.revision)} is in force${note ? `: ${note}` : ''}`;
      this.options.log.info({ revision: source.revision, rolledBackTo: pin.revision }, message);
      this.event('release', source.revision, previous?.revision ?? null, null, message);
      return { revision: source.revision, message };
    });
  }

  /** The running (or halted) canary's set to everyone now. */
  promote(note: string | undefined): Promise<{ revision: string; message: string }> {
    return this.serially(async () => {
      const candidate = this.run?.candidate ?? (this.halted && this.source?.revision === this.halted.revision ? this.source : undefined);
      if (!candidate) throw new RolloutRefusal(409, 'no canary to promote: no new set is waiting');
      const message = `promoted by hand: ${short(candidate.revision)} to everyone${note ? `: ${note}` : ''}`;
      this.release('promoted', message, note);
      return { revision: candidate.revision, message };
    });
  }

  /** Stops the running canary: its canaries get the set in force back. */
  abort(note: string | undefined): Promise<{ revision: string; message: string }> {
    return this.serially(async () => {
      const run = this.run;
      if (!run) throw new RolloutRefusal(409, 'no canary is running');
      this.halt(`aborted by hand${note ? `: ${note}` : ''}`, 'aborted');
      return { revision: run.candidate.revision, message: `aborted the canary of ${short(run.candidate.revision)}; everyone stays on ${short(run.previous.revision)}` };
    });
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  // --- the view --------------------------------------------------------------

  view(): RolloutView {
    const { clock, bakeMs } = this.options;
    const run = this.run;
    let canary: CanaryState | null = null;
    if (run) {
      const members = [...run.members.values()];
      const wall = (mono: number) => new Date(clock.wallNow() - (clock.now() - mono)).toISOString();
      canary = {
        revision: run.candidate.revision,
        previous: run.previous.revision,
        audience: run.audience,
        phase: run.phase,
        startedAt: wall(run.startedAt),
        bakeMs,
        ...(run.bakeStartedAt !== undefined ? { bakeEndsAt: wall(run.bakeStartedAt + bakeMs) } : {}),
        members: members.length,
        delivered: members.filter((m) => m.deliveredAt !== undefined).length,
      };
    } else if (this.halted && this.source?.revision === this.halted.revision) {
      const h = this.halted;
      canary = { revision: h.revision, previous: h.previous, audience: [...this.options.canary], phase: 'halted', startedAt: h.at, bakeMs, members: 0, delivered: 0, note: h.note };
    }
    const pin = this.pin;
    return rolloutView({
      revision: this.inForce?.revision ?? null,
      source: this.source?.revision ?? null,
      rolledBack: pin ? { revision: pin.revision, replaces: pin.replaces, source: this.source?.revision ?? pin.sourceRevision, at: pin.at, by: pin.by, ...(pin.note ? { note: pin.note } : {}) } : null,
      canary,
      required: this.options.required,
      instances: this.options.instances(),
      wallNow: clock.wallNow(),
    });
  }

  // --- history and events ----------------------------------------------------

  /** A statement was published: the entries waiting for it are recorded with it. */
  published(announcement: Announcement): void {
    if (!announcement.message) return;
    const canary = announcement.audience !== undefined;
    const waiting = this.pending.filter((p) => p.revision === announcement.revision && p.canary === canary);
    if (waiting.length === 0) return;
    let head: Record<string, unknown> | undefined;
    try {
      head = announcementHead(JSON.parse(Buffer.from(announcement.message).toString('utf8')) as { payload: Record<string, unknown> });
    } catch {
      head = undefined;
    }
    for (const p of waiting) {
      this.pending.splice(this.pending.indexOf(p), 1);
      p.record(head);
    }
  }

  /** An entry for a set stated anew: recorded with its statement once that is published. */
  private recordInForce(
    kind: EntryKind,
    snapshot: Snapshot,
    previous: Snapshot | undefined,
    extra: { note?: string; replaces?: string; audience?: string[]; canary?: boolean; keyed?: string },
  ): void {
    const contents = new Map<string, Buffer>();
    for (const f of snapshot.files) {
      const text = snapshot.contents.get(f.path);
      if (text !== undefined) contents.set(f.sha256, Buffer.from(text, 'utf8'));
    }
    const facts = {
      kind,
      revision: snapshot.revision,
      files: snapshot.files,
      rules: ruleIndex(snapshot.policies),
      previousSet: previous,
      warnings: snapshot.warnings.length,
      audience: extra.audience ?? null,
      key: `${kind}:${snapshot.revision}:${extra.keyed ?? previous?.revision ?? ''}`,
      ...(extra.note !== undefined ? { note: extra.note } : {}),
      ...(extra.replaces !== undefined ? { replaces: extra.replaces } : {}),
    };
    // Halted and aborted entries state nothing new of their own set.
    if (kind === 'halted' || kind === 'aborted') {
      this.record(facts, contents);
      return;
    }
    this.pending.push({ revision: snapshot.revision, canary: extra.canary === true, record: (announcement) => this.record({ ...facts, ...(announcement ? { announcement } : {}) }, contents) });
  }

  private record(
    facts: {
      kind: EntryKind;
      revision: string;
      files: Snapshot['files'];
      rules: RuleIndex;
      previousSet?: Snapshot | undefined;
      warnings: number;
      audience: string[] | null;
      key: string;
      note?: string;
      replaces?: string;
      problems?: Rejection['problems'];
      announcement?: Record<string, unknown>;
    },
    contents: ReadonlyMap<string, Buffer>,
  ): void {
    const { clock, by, signer, log } = this.options;
    const history = this.history;
    if (!history) return;
    const { previousSet: before, ...rest } = facts;
    const previous = before && before.revision !== facts.revision ? { revision: before.revision, files: before.files, rules: before === this.inForce ? this.rules : ruleIndex(before.policies) } : undefined;
    const entry = makeEntry({ ...rest, previous, by, at: clock.wallNow(), signer: facts.kind === 'rejected' ? null : signer });
    this.writes = this.writes.then(async () => {
      const recorded = await this.retrier.run('recording in the policy history', { kind: entry.kind, revision: entry.revision, history: history.where }, async () => {
        const { appended } = await history.append(entry, contents);
        if (!appended) log.debug({ kind: entry.kind, revision: entry.revision }, 'another sentinel recorded this in the history already');
      });
      if (!recorded) this.historyFailures++;
    });
  }

  private persist(): void {
    const history = this.history;
    if (!history) return;
    this.writes = this.writes.then(async () => {
      const state = this.rolloutRecord();
      if (!(await this.retrier.run('recording the rollout state', { history: history.where }, () => history.writeRollout(state)))) this.historyFailures++;
    });
  }

  private rolloutRecord(): RolloutRecord {
    return { ...(this.pin ? { pin: this.pin } : {}), ...(this.halted ? { halted: this.halted } : {}) };
  }

  private async persistNow(): Promise<void> {
    const { log } = this.options;
    const history = this.history;
    if (!history) return;
    try {
      await history.writeRollout(this.rolloutRecord());
    } catch (err) {
      this.historyFailures++;
      log.error({ error: messageOf(err), history: history.where }, 'could not record the rollout state');
      throw err instanceof HistoryError ? err : new HistoryError(`could not record the rollout state in ${history.where}: ${messageOf(err)}`);
    }
  }

  private async rebuild(revision: string): Promise<Snapshot | undefined> {
    const { log, build } = this.options;
    const history = this.history;
    if (!history) return undefined;
    try {
      const entry = await resolveReference(history, revision);
      const rebuilt = await rebuildSnapshot(entry, history, build);
      if (rebuilt.ok) return rebuilt.snapshot;
      log.error({ revision }, rebuilt.why);
    } catch (err) {
      log.error({ revision, error: messageOf(err) }, 'could not read a set back from the history');
    }
    return undefined;
  }

  private event(event: RolloutEventName, revision: string, previous: string | null, audience: string[] | null, message: string): void {
    this.emit('event', { schemaVersion: 1, event, revision, previous, audience, message, at: new Date(this.options.clock.wallNow()).toISOString() });
  }
}

function short(revision: string): string {
  return revision.slice(0, 12);
}

/** Worse than at delivery: a status of higher rank (healthy < degraded < unhealthy), or silent. */
function worse(baseline: InstanceStatus | undefined, now: InstanceStatus): boolean {
  if (now === 'stale') return true;
  if (now === 'suspect') return false;
  const before = baseline === undefined || baseline === 'suspect' || baseline === 'stale' ? 0 : RANK[baseline];
  return RANK[now] > before;
}

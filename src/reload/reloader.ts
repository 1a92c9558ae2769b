import { diffFiles } from '../policy/revision.js';
import type { Consumer } from '../policy/consumer.js';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../clock.js';
import { ERROR_CODES, formatProblem } from '../errors.js';
import { SKIP_FILE_HINT, type InvalidFileMode } from '../policy/invalid-files.js';
import type { LoadOptions, LoadResult } from '../policy/load.js';
import { computeRevision } from '../policy/revision.js';
import { buildSnapshot, digestFiles, type Rejection, type Snapshot } from '../policy/snapshot.js';
import { QuietWindow } from '../watch/quiet-window.js';
import type { DirtyKind } from '../watch/policy-watcher.js';

/** Reads every file of the set (policy/load.ts's `loadFiles`, in the daemon). */
export type Loader = (options: LoadOptions) => Promise<LoadResult>;
/** Which policy files another process holds open for writing (policy/open-writers.ts, in the daemon). */
export type WritersCheck = (dir: string) => Promise<Map<string, number>>;

export interface ReloaderOptions extends LoadOptions {
  allowEmpty: boolean;
  strictKeys: boolean;
  consumer: Consumer;
  strictConsumer: boolean;
  invalidFiles: InvalidFileMode;
  quietWindowMs: number;
  maxWaitMs: number;
  /** Full re-read every so often, for what a watcher misses (network filesystems); 0 turns it off. */
  rescanIntervalMs: number;
  /** How often a set refused as unreadable is read again (the directory check's cadence). */
  dirCheckIntervalMs: number;
  clock: Clock;
  log: Logger;
  load: Loader;
  /** Asked, for reads a file event led to, whether a writer still holds a file open; none when absent. */
  openWriters?: WritersCheck;
}

/** How long reads at the cap wait for files still being written, in caps (maxWait): 4 s by default. */
export const HOT_DEFER_FACTOR = 4;

/** How long close waits for a read in flight. */
const CLOSE_WAIT = 250; // ms

/** Warnings logged one per line for a new set; the rest are counted. */
const MAX_LOGGED_WARNINGS = 50;
/** Changed files named in the "accepted" log line; the rest are counted (all of them are in its `changed` field). */
const MAX_NAMED_CHANGES = 10;

/** Why an apply ran. */
export type Trigger = 'startup' | 'watch' | 'swap' | 'rescan' | 'signal';

/**
 * What an apply did:
 * - `accepted`: a new valid snapshot is in force;
 * - `rejected`: a new invalid set was refused (the snapshot in force is kept);
 * - `recovered`: after a rejection, the files are back to the revision in force;
 * - `unchanged`: the files are those read last time, or hash to what is in force;
 * - `waiting`: the policy directory does not exist yet;
 * - `unstable`: a file changed while being read; another apply follows the quiet window.
 */
export type ApplyOutcome = 'accepted' | 'rejected' | 'recovered' | 'unchanged' | 'waiting' | 'unstable';

export interface ReloaderEvents {
  /** A new valid snapshot is in force. */
  accepted: [snapshot: Snapshot, context: ApplyContext];
  /** A new invalid set was refused; the snapshot in force (if any) stays. */
  rejected: [rejection: Rejection, context: ApplyContext];
  /** After a rejection, the files are back to the snapshot in force. */
  recovered: [snapshot: Snapshot, context: ApplyContext];
  /** Every apply, whatever its outcome (for metrics and tests). */
  applied: [outcome: ApplyOutcome, context: ApplyContext];
}

export interface ApplyContext {
  trigger: Trigger;
  /** Monotonic time of the first file event that led to this apply, if one did. */
  firstEventAt?: number;
  /** Events coalesced into this apply. */
  events: number;
  /** The quiet window was cut short by its cap: writes may still be under way. */
  capped?: boolean;
}

/**
 * Watch, hash, apply: the reload engine, in the shape of Prometheus' config
 * reloader. Whoever watches only says "dirty" (`dirty()`); `apply()` reads
 * every file through the loader it is handed, hashes, and returns early when
 * the set is the one read last; only a set that validates as a whole (or,
 * with skip-file, what is left of it) becomes the snapshot in force. A
 * periodic full apply catches what the watcher missed. It knows nothing of the
 * bus, of the watcher, or of the filesystem: time is its clock, files its loader.
 */
export class PolicyReloader extends EventEmitter<ReloaderEvents> {
  /** The valid snapshot in force, once there is one. */
  inForce: Snapshot | undefined;
  /** The newest refused set, while the files on disk are still that set. */
  lastRejection: Rejection | undefined;

  private readonly window: QuietWindow;
  /** A read put off (a file changing or still being written), to be folded into the next one. */
  private deferred: ApplyContext | undefined;
  private rescanTimer: TimerHandle | undefined;
  private recheckTimer: TimerHandle | undefined;
  private running: Promise<ApplyOutcome> | undefined;
  private rerun: ApplyContext | undefined;
  private burstStartedAt: number | undefined;
  /** What was on disk at the last complete read (see candidateKey): the same again needs nothing. */
  private lastCandidate: string | undefined;
  /** When reads at the cap started finding files still being written. */
  private hotSince: number | undefined;
  private waitingLogged = false;
  private closing: Promise<void> | undefined;
  /** When the last file event came (monotonic). */
  private lastEventAt = Number.NEGATIVE_INFINITY;
  /** The open-writers scan started while the quiet window runs, so that the read need not wait for it. */
  private prescan: { startedAt: number; writers: Promise<Map<string, number>> } | undefined;
  private prescanTimer: TimerHandle | undefined;

  constructor(private readonly options: ReloaderOptions) {
    super();
    this.window = new QuietWindow({
      quietMs: options.quietWindowMs,
      maxWaitMs: options.maxWaitMs,
      clock: options.clock,
      onFire: ({ events, capped }) => void this.apply(this.fired(events, capped)),
    });
  }

  /** Reads the set once, and starts the periodic rescan. */
  async start(): Promise<ApplyOutcome> {
    const outcome = await this.apply({ trigger: 'startup', events: 0 });
    this.scheduleRescan();
    return outcome;
  }

  /** Stops reading. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.window.cancel();
      if (this.rescanTimer) this.options.clock.clearTimeout(this.rescanTimer);
      if (this.recheckTimer) this.options.clock.clearTimeout(this.recheckTimer);
      if (this.prescanTimer) this.options.clock.clearTimeout(this.prescanTimer);
      // A read in flight is not waited for long: what it finds after close is dropped anyway.
      await Promise.race([this.running?.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, CLOSE_WAIT).unref())]);
    })();
    return this.closing;
  }

  /**
   * Reads, hashes and, when the set is new, validates it. Calls never overlap:
   * one made while another runs is folded into a single follow-up run.
   */
  apply(context: ApplyContext): Promise<ApplyOutcome> {
    if (this.running) {
      this.rerun = mergeContexts(this.rerun, context);
      return this.running;
    }
    this.running = this.applyOnce(context).finally(() => {
      this.running = undefined;
      const next = this.rerun;
      this.rerun = undefined;
      if (next && !this.closing) void this.apply(next);
    });
    return this.running;
  }

  private async applyOnce(context: ApplyContext): Promise<ApplyOutcome> {
    const outcome = await this.evaluate(context).catch((err: unknown) => {
      // Every expected failure is a Problem; this is a bug, and the daemon keeps its state.
      this.options.log.error({ err }, 'unexpected error while applying the policy set');
      return 'unchanged' as const;
    });
    this.emit('applied', outcome, context);
    this.scheduleRecheck();
    return outcome;
  }

  /**
   * A set refused because a file or the directory could not be read is read
   * again on the directory check's cadence: the fix is often a chmod, and a
   * chmod of the directory makes no event the watcher reports.
   */
  private scheduleRecheck(): void {
    const { clock, dirCheckIntervalMs } = this.options;
    const unreadable = this.lastRejection?.problems.some((p) => p.code === ERROR_CODES.POLICY_READ || p.code === ERROR_CODES.POLICY_DIR_MISSING);
    if (!unreadable || this.recheckTimer !== undefined || this.closing) return;
    this.recheckTimer = clock.setTimeout(() => {
      this.recheckTimer = undefined;
      void this.apply({ trigger: 'rescan', events: 0 });
    }, dirCheckIntervalMs);
  }

  private async evaluate(context: ApplyContext): Promise<ApplyOutcome> {
    const { log } = this.options;
    // A read a file event led to asks, at the same time, whether another process still holds a file open for writing.
    const writers = context.trigger === 'watch' ? this.writersNow() : undefined;
    const loaded = await this.options.load(this.options);
    if (this.closing) return 'unchanged';
    if (loaded.unstable) {
      log.debug('a policy file changed while being read; reading again after the quiet window');
      this.defer(context);
      return 'unstable';
    }
    // Read while a file was written less than a quiet window ago (at the cap; or after a quiet window, by a
    // writer that started again while the set was read), or while a writer holds one open: it may be
    // half-written. Wait, but not forever: a writer that never pauses, or never closes, is read after
    // HOT_DEFER_FACTOR x max_wait.
    const { clock, quietWindowMs, maxWaitMs } = this.options;
    const afterEvents = context.capped === true || context.trigger === 'watch';
    const hot = afterEvents && loaded.newestMtimeMs > clock.wallNow() - quietWindowMs;
    const open = (await writers) ?? new Map<string, number>();
    if ((hot || open.size > 0) && clock.now() - (this.hotSince ??= clock.now()) < HOT_DEFER_FACTOR * maxWaitMs) {
      if (open.size > 0) log.debug({ openForWriting: Object.fromEntries(open) }, 'a policy file is open for writing; waiting for it to be closed');
      else log.debug('a policy file is still being written; waiting for quiet before reading it');
      this.defer(context);
      return 'unstable';
    }
    this.hotSince = undefined;
    if (loaded.dirMissing && this.inForce === undefined && this.lastRejection === undefined) {
      if (!this.waitingLogged) log.warn({ dir: this.options.dir }, 'waiting for the policy directory to appear');
      this.waitingLogged = true;
      return 'waiting';
    }

    // Hash first: the files read last time, byte for byte, need nothing more.
    const files = digestFiles(loaded.sources);
    const candidate = candidateKey(computeRevision(files), loaded.problems);
    if (candidate === this.lastCandidate) return 'unchanged';
    this.lastCandidate = candidate;

    const { allowEmpty, strictKeys, invalidFiles, consumer, strictConsumer } = this.options;
    const result = buildSnapshot(loaded.sources, loaded.problems, { allowEmpty, strictKeys, invalidFiles, consumer, strictConsumer }, files);
    if (!result.ok) {
      this.lastRejection = result.rejection;
      const hint = invalidFiles === 'reject-set' && result.rejection.problems.some((p) => p.file !== '') ? `; ${SKIP_FILE_HINT}` : '';
      log.error(
        {
          revision: result.rejection.revision,
          inForce: this.inForce?.revision ?? null,
          problems: result.rejection.problems.map((p) => formatProblem(p)),
        },
        `policy set rejected (${result.rejection.problems.length} problem(s)); keeping the revision in force${hint}`,
      );
      this.emit('rejected', result.rejection, context);
      return 'rejected';
    }
    const snapshot = result.snapshot;
    const previous = this.inForce;
    this.inForce = snapshot;
    if (snapshot.skipped.length > 0) {
      log.warn(
        { revision: snapshot.revision, skipped: snapshot.skipped.flatMap((s) => s.problems.map((p) => formatProblem(p))) },
        `left out ${snapshot.skipped.length} invalid file(s) (invalid_files = skip-file): ${snapshot.skipped.map((s) => s.path).join(', ')}`,
      );
    }
    if (snapshot.revision === previous?.revision) {
      // The same files in force (only what was skipped may differ): nothing new to announce.
      if (!this.lastRejection) return 'unchanged';
      this.lastRejection = undefined;
      log.info({ revision: snapshot.revision }, 'policy files are back to the revision in force');
      this.emit('recovered', snapshot, context);
      return 'recovered';
    }
    this.lastRejection = undefined;
    for (const warning of snapshot.warnings.slice(0, MAX_LOGGED_WARNINGS)) log.warn({ revision: snapshot.revision }, formatProblem(warning, 'warning'));
    if (snapshot.warnings.length > MAX_LOGGED_WARNINGS) {
      log.warn({ revision: snapshot.revision }, `and ${snapshot.warnings.length - MAX_LOGGED_WARNINGS} more policy warnings (nachos-sentinel validate lists them all)`);
    }
    // The files that changed, named in the line itself: what an operator looks for first.
    const changed = diffFiles(previous?.files ?? [], snapshot.files);
    const named = [...changed.added.map((f) => `+${f}`), ...changed.modified.map((f) => `~${f}`), ...changed.removed.map((f) => `-${f}`)];
    const shown = named.length > MAX_NAMED_CHANGES ? `${named.slice(0, MAX_NAMED_CHANGES).join(' ')} and ${named.length - MAX_NAMED_CHANGES} more` : named.join(' ');
    log.info(
      {
        revision: snapshot.revision,
        previous: previous?.revision ?? null,
        files: snapshot.files.length,
        rules: snapshot.ruleCount,
        warnings: snapshot.warnings.length,
        skipped: snapshot.skipped.length,
        trigger: context.trigger,
        changed,
      },
      `policy set accepted${shown ? `: ${shown}` : ''}`,
    );
    this.emit('accepted', snapshot, context);
    return 'accepted';
  }

/** Reads again after the quiet window, keeping when the change started, what triggered it and its events. */
  private defer(context: ApplyContext): void {
    if (this.closing) return;
    if (context.firstEventAt !== undefined) this.burstStartedAt ??= context.firstEventAt;
    this.deferred = mergeContexts(this.deferred, { trigger: context.trigger, events: context.events });
    this.window.poke(0);
  }

  /** The read the quiet window calls for: its file events, plus a read put off, if any. */
  private fired(events: number, capped: boolean): ApplyContext {
    const deferred = this.deferred;
    this.deferred = undefined;
    const firstEventAt = this.takeBurstStart();
    if (deferred && events === 0) return { ...deferred, capped, firstEventAt };
    return { ...mergeContexts(deferred, { trigger: 'watch', events }), capped, firstEventAt };
  }

  /**
   * Which files another process holds open for writing, as of now. A scan
   * that started after the last file event is as good as one started now (a
   * writer holding a file open opened it before it wrote): the one started
   * half a quiet window after the last event is used, and the read does not
   * wait for a scan of every process (about 10 ms).
   */
  private writersNow(): Promise<Map<string, number>> | undefined {
    const { openWriters, dir } = this.options;
    if (!openWriters) return undefined;
    const scan = this.prescan;
    this.prescan = undefined;
    if (scan && scan.startedAt >= this.lastEventAt) return scan.writers;
    return openWriters(dir).catch(() => new Map<string, number>());
  }

  /** Half a quiet window after an event (each event moves it), the open-writers scan starts. */
  private schedulePrescan(): void {
    const { openWriters, clock, quietWindowMs, dir } = this.options;
    if (!openWriters) return;
    if (this.prescanTimer !== undefined) clock.clearTimeout(this.prescanTimer);
    this.prescanTimer = clock.setTimeout(() => {
      this.prescanTimer = undefined;
      if (this.closing) return;
      this.prescan = { startedAt: clock.now(), writers: openWriters(dir).catch(() => new Map<string, number>()) };
    }, quietWindowMs / 2);
  }

  /** Something changed on disk (`kind` says what; the watcher knows no more): read after the quiet window, or at once for a swap. */
  dirty(kind: DirtyKind, file: string): void {
    if (this.closing) return;
    this.options.log.trace({ kind, file }, 'policy files dirty');
    this.lastEventAt = this.options.clock.now();
    this.burstStartedAt ??= this.options.clock.now();
    if (kind === 'swap') {
      // A ConfigMap swap is complete by construction: no need to wait for quiet. The events waiting for it are read now.
      const waiting = this.window.cancel();
      const deferred = this.deferred;
      this.deferred = undefined;
      void this.apply({ ...mergeContexts(deferred, { trigger: 'swap', events: 1 + waiting }), trigger: 'swap', firstEventAt: this.takeBurstStart() });
    } else {
      this.window.poke();
      this.schedulePrescan();
    }
  }

  private takeBurstStart(): number | undefined {
    const at = this.burstStartedAt;
    this.burstStartedAt = undefined;
    return at;
  }

  private scheduleRescan(): void {
    const { rescanIntervalMs, clock } = this.options;
    if (rescanIntervalMs <= 0 || this.closing) return;
    this.rescanTimer = clock.setTimeout(() => {
      void this.apply({ trigger: 'rescan', events: 0 }).finally(() => this.scheduleRescan());
    }, rescanIntervalMs);
  }
}

function mergeContexts(a: ApplyContext | undefined, b: ApplyContext): ApplyContext {
  if (!a) return b;
  return {
    trigger: a.trigger === 'rescan' ? b.trigger : a.trigger,
    firstEventAt: a.firstEventAt ?? b.firstEventAt,
    events: a.events + b.events,
    // Either cut short by the cap: writes may still be under way.
    capped: a.capped === true || b.capped === true,
  };
}

/**
 * What identifies a candidate set: the revision of the files that could be
 * read, and which files could not be read and why (those are not in the revision).
 */
function candidateKey(revision: string, readProblems: Rejection['problems']): string {
  return [revision, ...readProblems.map((p) => `${p.code}:${p.file}`).sort()].join('\n');
}

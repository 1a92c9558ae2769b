import type { Logger } from 'pino';
import { messageOf } from '../errors.js';
import { contentBytes } from '../policy/announcements.js';
import { encodeEnvelope, makeEnvelope } from '../protocol/envelope.js';
import type { Requester, Subscriber } from '../protocol/ports.js';
import { SUBJECTS } from '../protocol/topics.js';
import { ReloadApplier, RETRY_FIRST, RETRY_MAX, type ApplierEvent, type ReceiveOutcome, type WholeReload } from '../subscriber/reload-applier.js';
import { ReloadFilter, type FilterReason } from '../subscriber/reload-filter.js';
import { ForeignFilesError, type ConfigMapDir, type Delivered, type DeliveryFile } from './configmap-dir.js';

/**
 * A delivery starts at least this long after the previous one. A reader that
 * reads the directory a debounce after its last event (Nachos: 100 ms) has
 * then finished before the next set lands: it never reads two halves.
 */
export const DELIVERY_SPACING = 250; // ms
export { RETRY_FIRST, RETRY_MAX };
/** Messages larger than this are not read (the server's max_payload bounds them anyway). */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** Why a reload was not delivered: the filter's reasons, and what the receiver finds itself. */
export type RefusalReason = Exclude<FilterReason, 'duplicate' | 'not for us'> | 'not json' | 'unsafe name' | 'unwritable';

export interface PolicyReceiverOptions {
  bus: Subscriber & Requester;
  dir: ConfigMapDir;
  /** Only reloads signed by one of these keys are delivered; none: unsigned reloads are taken. */
  publicKeys: readonly string[];
  /** The deployment named in every set it takes. */
  deployment: string;
  maxClockSkewMs: number;
  /** The envelope `source` of our requests: the neighbour's component. */
  source: string;
  /** This sidecar's instance id: with the component, what a canary's audience names. */
  instance: string;
  log: Logger;
  /** Told when a delivery fails or succeeds again (the heartbeat says it at once). */
  onChange?: () => void;
  /** Wall-clock milliseconds (injectable for tests). */
  now?: () => number;
  /**
   * Where the newest statement for everyone is kept when no central sentinel answers (the history stream,
   * store = "jetstream"): the message as published, and a body that travelled apart, by its SHA-256.
   */
  kept?: () => Promise<{ message: Uint8Array; body: (sha256: string) => Promise<Buffer | undefined> } | undefined>;
}

/**
 * Receives the reloads the central sentinel announces (and asks for the set
 * in force on each connection: the bus kept nothing while we were away),
 * checks each (the filter: signature, deployment, freshness, replays,
 * consistency), and writes them into the delivery directory through an
 * applier: one at a time, in the order they were issued, never back to an
 * older set, a failure tried again until a newer set supersedes it. What it
 * delivered stays until a newer verified set arrives, across its own
 * restarts and the central sentinel's absence.
 */
export class PolicyReceiver {
  /** The set on disk (delivered now or before a restart), with its newest statement. */
  delivered: Delivered | undefined;
  /** A set refused for good (it can never be written here), until a newer one is delivered. */
  refusal: string | undefined;
  /** Entries of the directory that are not ours, found at the last delivery. */
  foreign: string[] = [];
  /** Reloads refused, by reason. */
  readonly refused: Partial<Record<RefusalReason, number>> = {};
  private filter: ReloadFilter;
  private applier: ReloadApplier;
  private askTimer: NodeJS.Timeout | undefined;
  private opened = false;
  private openTimer: NodeJS.Timeout | undefined;
  private openWait = RETRY_FIRST;
  private askWait = RETRY_FIRST;
  private heardSinceConnect = false;
  private closed = false;
  private failureText: string | undefined;
  /** The revision `failureText` or `refusal` is about. */
  private problemRevision: string | undefined;
  /** A failure was said since the last delivery (the heartbeat says its end at once). */
  private hadProblem = false;
  private readonly listeners: ((delivered: Delivered) => void)[] = [];
  /** Bodies read from the history stream (a statement whose body travelled apart), served to the applier's fetch. */
  private readonly keptBodies = new Map<string, { bytes: Buffer; partBytes: number }>();

  constructor(private readonly options: PolicyReceiverOptions) {
    this.filter = this.makeFilter(undefined);
    this.applier = this.makeApplier();
  }

  /** Why the newest set is not on disk yet (a fetch, a write), until it or a newer one is. */
  get failure(): string | undefined {
    return this.failureText;
  }

  /** The newest set that could not be taken, and why: failing (tried again) or refused for good; said in the heartbeat. */
  get problem(): { revision: string; error: string } | undefined {
    if (this.problemRevision === undefined) return undefined;
    const error = this.failureText ?? this.refusal;
    return error === undefined ? undefined : { revision: this.problemRevision, error };
  }

  /** Called after each delivery (the root tells the neighbour and publishes the new revision). */
  onDelivered(listener: (delivered: Delivered) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Opens the delivery directory (refusing one that holds files we did not
   * write, repairing what a kill left), starts the replay check from the set
   * on disk, then listens for reloads. A directory that cannot be opened yet
   * (a permission, a file in its place) is said in the health and tried again,
   * backing off; reloads are listened for once it opens. Throws
   * ForeignFilesError: that one is the operator's to decide.
   */
  async start(): Promise<void> {
    await this.open(true);
  }

  private async open(first: boolean): Promise<void> {
    const { dir, bus, log } = this.options;
    let opened;
    try {
      opened = await dir.open();
    } catch (err) {
      if (err instanceof ForeignFilesError || this.closed) throw err;
      this.failureText = `cannot use the delivery directory ${dir.dir}: ${messageOf(err)}`;
      const wait = this.openWait * (0.8 + 0.4 * Math.random());
      this.openWait = Math.min(this.openWait * 2, RETRY_MAX);
      log.error({ retryInMs: Math.round(wait) }, this.failureText);
      if (first) this.options.onChange?.();
      this.openTimer = setTimeout(() => void this.open(false).catch((e: unknown) => log.error({ error: messageOf(e) }, 'the delivery directory cannot be used')), wait);
      this.openTimer.unref();
      return;
    }
    this.opened = true;
    this.failureText = undefined;
    if (opened.moved) log.warn({ dir: dir.dir, movedTo: opened.movedTo, moved: opened.moved }, 'took the delivery directory over: what was in it was moved aside');
    if (opened.repaired.length > 0) log.warn({ dir: dir.dir, repaired: opened.repaired }, 'the delivery directory was left half-changed (a kill?); repaired it around the set ..data points to');
    this.delivered = opened.delivered;
    if (opened.record) {
      this.filter = this.makeFilter(opened.record);
      this.applier = this.makeApplier();
    }
    if (this.delivered) log.info({ revision: this.delivered.revision, dir: dir.dir }, 'the delivery directory holds a verified set; keeping it until a newer one arrives');
    else if (opened.record) log.warn({ revision: opened.record.revision, dir: dir.dir }, 'the files in the delivery directory do not match their record; the next set replaces them');
    bus.subscribe(SUBJECTS.policyReload, (data) => this.receive(data, 'reload'));
    if (!first) {
      this.options.onChange?.();
      await this.ask();
    }
  }

  /** On each (re)connection: the set in force, asked (announcements made while away were lost). */
  async connected(): Promise<void> {
    if (!this.opened) return;
    this.heardSinceConnect = false;
    this.askWait = RETRY_FIRST;
    clearTimeout(this.askTimer);
    await this.ask();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.askTimer);
    clearTimeout(this.openTimer);
    this.applier.close();
  }

  /** The total of refused reloads. */
  get refusedCount(): number {
    return Object.values(this.refused).reduce((a, b) => a + (b ?? 0), 0);
  }

  /**
   * With signing: when the newest statement of the set on disk expired (the
   * central sentinel re-signs the set in force well before), why in words;
   * the set is kept (policy is never deleted), but it may be stale.
   */
  staleness(): string | undefined {
    const confirmed = this.filter.confirmation;
    if (this.options.publicKeys.length === 0 || !confirmed || !this.delivered) return undefined;
    const now = (this.options.now ?? Date.now)();
    if (confirmed.expiresAt >= now) return undefined;
    return (
      `the set on disk (${confirmed.revision.slice(0, 12)}) was last confirmed by a statement issued ${age(now - confirmed.issuedAt)} ago, ` +
      `which expired ${age(now - confirmed.expiresAt)} ago; kept, but the central sentinel may have moved on: is it running and reachable?`
    );
  }

  private makeFilter(after: Delivered | undefined): ReloadFilter {
    const { publicKeys, deployment, maxClockSkewMs, now } = this.options;
    return new ReloadFilter({
      ...(publicKeys.length > 0 ? { publicKeys } : {}),
      deployment,
      maxClockSkewMs,
      member: { component: this.options.source, instance: this.options.instance },
      ...(now ? { now } : {}),
      ...(after ? { after: { revision: after.revision, issuedAt: after.issuedAt, expiresAt: after.expiresAt } } : {}),
    });
  }

  private makeApplier(): ReloadApplier {
    const { bus } = this.options;
    return new ReloadApplier({
      filter: this.filter,
      request: (subject, data) => this.keptPart(data) ?? bus.request(subject, data),
      apply: (reload) => this.write(reload),
      askCurrent: () => this.requestCurrent(),
      spacingMs: DELIVERY_SPACING,
      onEvent: (event) => this.onApplierEvent(event),
    });
  }

  private async ask(): Promise<void> {
    const { log } = this.options;
    try {
      const answer = await this.requestCurrent();
      if (answer !== undefined) this.judge(answer, 'current');
    } catch (err) {
      const error = messageOf(err);
      // No responders: no central sentinel yet; its announcement on connecting will do. Shed, or too slow
      // to answer: asked again, backing off, unless an announcement reached us meanwhile.
      if (/no responders/i.test(error) || this.closed) {
        log.debug({ error }, 'no answer on policy.current; waiting for an announcement');
        if (!this.closed) await this.fromHistory();
        return;
      }
      const wait = this.askWait * (0.8 + 0.4 * Math.random());
      this.askWait = Math.min(this.askWait * 2, RETRY_MAX);
      log.info({ error, retryInMs: Math.round(wait) }, 'policy.current did not answer; asking again');
      this.askTimer = setTimeout(() => {
        if (!this.heardSinceConnect) void this.ask();
      }, wait);
      this.askTimer.unref();
    }
  }

  /**
   * No central sentinel answers: the newest statement kept in the history stream, judged as any other
   * (signature, deployment, expiry, replays), delivered when it is newer than what is on disk.
   */
  private async fromHistory(): Promise<void> {
    const { kept, log } = this.options;
    if (!kept) return;
    try {
      const found = await kept();
      if (!found) {
        log.info('no central sentinel answers, and the history stream holds no statement yet');
        return;
      }
      const message = parse(found.message) as { payload?: { revision?: unknown; transfer?: { sha256?: unknown; partBytes?: unknown } } } | undefined;
      const { sha256, partBytes } = message?.payload?.transfer ?? {};
      if (typeof sha256 === 'string' && typeof partBytes === 'number' && partBytes > 0) {
        const bytes = await found.body(sha256);
        // One kept at a time: the newest statement's.
        this.keptBodies.clear();
        if (bytes) this.keptBodies.set(sha256, { bytes, partBytes });
      }
      log.info({ revision: message?.payload?.revision }, 'no central sentinel answers: judging the newest statement kept in the history stream');
      this.receive(found.message, 'current');
    } catch (err) {
      log.warn({ error: messageOf(err) }, 'no central sentinel answers, and the history stream could not be read');
    }
  }

  /** A part of a body read from the history stream, when the request is for one (else undefined: asked on the bus). */
  private keptPart(data: Uint8Array): Promise<Uint8Array> | undefined {
    if (this.keptBodies.size === 0) return undefined;
    const request = parse(data) as { sha256?: unknown; part?: unknown } | undefined;
    const kept = typeof request?.sha256 === 'string' ? this.keptBodies.get(request.sha256) : undefined;
    if (!kept || typeof request?.part !== 'number' || !Number.isSafeInteger(request.part) || request.part < 0) return undefined;
    return Promise.resolve(kept.bytes.subarray(request.part * kept.partBytes, (request.part + 1) * kept.partBytes));
  }

  /** The reply on policy.current, parsed; undefined when it holds no set (the central sentinel has none yet). */
  private async requestCurrent(): Promise<unknown> {
    const { bus, source } = this.options;
    // Who asks: a sentinel in the middle of a canary answers a canary with the canary's set.
    const request = makeEnvelope(SUBJECTS.policyCurrent, source, { component: source, instance: this.options.instance });
    const data = await bus.request(SUBJECTS.policyCurrent, encodeEnvelope(request));
    const message = parse(data);
    if (typeof (message as { payload?: { revision?: unknown } } | undefined)?.payload?.revision !== 'string') return undefined;
    return message;
  }

  private receive(data: Uint8Array, via: 'reload' | 'current'): void {
    if (this.closed || data.byteLength > MAX_MESSAGE_BYTES) return;
    const message = parse(data);
    if (message === undefined) {
      this.refuse('not json', via);
      return;
    }
    this.judge(message, via);
  }

  private judge(message: unknown, via: 'reload' | 'current'): void {
    const outcome: ReceiveOutcome = this.applier.receive(message);
    if (outcome === 'queued' || outcome === 'duplicate') this.heardSinceConnect = true;
    if (outcome === 'duplicate') void this.confirm();
    else if (outcome === 'not for us') this.options.log.debug({ via, revision: (message as { payload?: { revision?: unknown } }).payload?.revision }, 'a reload for a canary this sidecar is not in; ignored');
    else if (outcome !== 'queued' && outcome !== 'superseded' && outcome !== 'refused before') this.refuse(outcome, via);
  }

  /** A newer statement of the set on disk: recorded, so a restart starts its replay check from it. */
  private async confirm(): Promise<void> {
    const confirmed = this.filter.confirmation;
    const delivered = this.delivered;
    if (!confirmed || !delivered || confirmed.revision !== delivered.revision) return;
    const issuedAt = new Date(confirmed.issuedAt).toISOString();
    if (delivered.issuedAt !== null && Date.parse(delivered.issuedAt) >= confirmed.issuedAt) return;
    const expiresAt = Number.isFinite(confirmed.expiresAt) ? new Date(confirmed.expiresAt).toISOString() : null;
    this.delivered = { ...delivered, issuedAt, expiresAt };
    try {
      await this.options.dir.confirm({ issuedAt, expiresAt });
    } catch (err) {
      this.options.log.warn({ error: messageOf(err) }, 'could not record the newer statement of the set on disk');
    }
    this.options.onChange?.();
  }

  private refuse(reason: RefusalReason, via: 'reload' | 'current', detail?: string): void {
    this.refused[reason] = (this.refused[reason] ?? 0) + 1;
    this.options.log.warn({ reason, via, ...(detail ? { detail } : {}), refused: this.refusedCount }, `refused a reload (${reason}); the delivered set stays`);
  }

  /** Writes a whole, verified set into the directory (the applier calls it, one at a time). */
  private async write(reload: WholeReload): Promise<void> {
    const { dir } = this.options;
    const files: DeliveryFile[] = (reload.files ?? [])
      .filter((f) => f.content !== undefined)
      .map((f) => ({ path: f.path, sha256: f.sha256, bytes: contentBytes(f) as Buffer }));
    let written: Delivered;
    try {
      written = await dir.write({ revision: reload.revision, issuedAt: reload.issuedAt ?? null, expiresAt: reload.expiresAt ?? null, files });
    } catch (err) {
      if (err instanceof Error && err.name === 'PermanentRefusal') throw err;
      throw new Error(`could not write the set into ${dir.dir}: ${messageOf(err)}`);
    }
    this.foreign = await dir.foreign().catch(() => []);
    // Said at once, with the failure it ends (the applier's event follows in the same turn).
    this.delivered = written;
    this.failureText = undefined;
  }

  private onApplierEvent(event: ApplierEvent): void {
    const { log, dir } = this.options;
    if (event.type === 'applied') {
      const delivered = this.delivered as Delivered;
      const changed = this.hadProblem || this.refusal !== undefined;
      this.hadProblem = false;
      this.refusal = undefined;
      if (this.foreign.length > 0) log.warn({ dir: dir.dir, foreign: this.foreign }, 'the delivery directory also holds files the sidecar did not write; a reader reads them too');
      log.info({ revision: delivered.revision, files: delivered.files.length, dir: dir.dir, reason: event.reload.reason }, 'delivered the policy set');
      if (changed) this.options.onChange?.();
      for (const listener of this.listeners) listener(delivered);
    } else if (event.type === 'failed') {
      this.hadProblem = true;
      this.problemRevision = event.revision;
      this.failureText = event.error.startsWith('could not write') ? event.error : `could not fetch revision ${event.revision.slice(0, 12)}: ${event.error}`;
      log.error({ revision: event.revision, retryInMs: event.retryInMs }, this.failureText);
      this.options.onChange?.();
    } else {
      const reason = event.reason === 'unsafe name' ? 'unsafe name' : 'unwritable';
      this.problemRevision = event.revision;
      this.refuse(reason, 'reload', event.error);
      this.refusal = `revision ${event.revision.slice(0, 12)} can never be delivered into ${dir.dir} (${event.error}); the set before it stays`;
      this.failureText = undefined;
      this.options.onChange?.();
    }
  }
}

function parse(data: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(data));
  } catch {
    return undefined;
  }
}

/** `3 h`, `12 min`, `40 s`. */
function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

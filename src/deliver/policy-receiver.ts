import type { Logger } from 'pino';
import { messageOf } from '../errors.js';
import { contentBytes, type PolicyReloadPayload } from '../policy/announcements.js';
import { encodeEnvelope, makeEnvelope } from '../protocol/envelope.js';
import type { Requester, Subscriber } from '../protocol/ports.js';
import { SUBJECTS } from '../protocol/topics.js';
import { fetchReloadBody } from '../subscriber/fetch-reload-body.js';
import { ReloadFilter, type FilterReason } from '../subscriber/reload-filter.js';
import { isDeliverableName, type ConfigMapDir, type Delivered, type DeliveryFile } from './configmap-dir.js';

/**
 * A delivery starts at least this long after the previous one. A reader that
 * reads the directory a debounce after its last event (Nachos: 100 ms) has
 * then finished before the next set lands: it never reads two halves.
 */
export const DELIVERY_SPACING = 250; // ms
/** A delivery that failed (a full disk, a permission) is tried again after this, doubling up to RETRY_MAX. */
export const RETRY_FIRST = 1000; // ms
export const RETRY_MAX = 30_000; // 30 s
/** Messages larger than this are not read (the server's max_payload bounds them anyway). */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** Why a reload was not delivered: the filter's reasons, and what the receiver checks itself. */
export type RefusalReason = Exclude<FilterReason, 'duplicate'> | 'not json' | 'unsafe name' | 'body unavailable';

export interface PolicyReceiverOptions {
  bus: Subscriber & Requester;
  dir: ConfigMapDir;
  /** Only reloads signed by this key are delivered. */
  publicKey: string | undefined;
  /** The envelope `source` of our requests. */
  source: string;
  log: Logger;
  /** Told when a delivery fails or succeeds again (the heartbeat says it at once). */
  onChange?: () => void;
}

/**
 * Receives the reloads the central sentinel announces (and asks for the set in
 * force on each connection: the bus kept nothing while we were away), checks
 * each (the filter: signature when a key is configured, consistency, replays),
 * and writes the newest into the delivery directory, one at a time, spaced.
 * What it delivered stays until a newer verified set arrives, across its own
 * restarts and the central sentinel's absence.
 */
export class PolicyReceiver {
  /** The set on disk (delivered now or before a restart). */
  delivered: Delivered | undefined;
  /** Why the last delivery failed, until one succeeds. */
  failure: string | undefined;
  /** Reloads refused, by reason. */
  readonly refused: Partial<Record<RefusalReason, number>> = {};
  private filter: ReloadFilter;
  private pending: PolicyReloadPayload | undefined;
  private writing = false;
  private lastWriteAt = -Infinity;
  private retryWait = RETRY_FIRST;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly listeners: ((delivered: Delivered) => void)[] = [];

  constructor(private readonly options: PolicyReceiverOptions) {
    this.filter = new ReloadFilter({ publicKey: options.publicKey });
  }

  /** Called after each delivery (the root tells the neighbour and publishes the new revision). */
  onDelivered(listener: (delivered: Delivered) => void): void {
    this.listeners.push(listener);
  }

  /** Reads what was delivered before, then listens for reloads. */
  async start(): Promise<void> {
    const { dir, publicKey, bus, log } = this.options;
    this.delivered = await dir.current();
    if (this.delivered) {
      log.info({ revision: this.delivered.revision, dir: dir.dir }, 'the delivery directory holds a verified set; keeping it until a newer one arrives');
      this.filter = new ReloadFilter({ publicKey, after: { revision: this.delivered.revision, issuedAt: this.delivered.issuedAt } });
    }
    bus.subscribe(SUBJECTS.policyReload, (data) => void this.receive(data, 'reload'));
  }

  /** On each (re)connection: the set in force, asked (announcements made while away were lost). */
  async connected(): Promise<void> {
    const { bus, source, log } = this.options;
    try {
      const request = encodeEnvelope(makeEnvelope(SUBJECTS.policyCurrent, source, {}));
      await this.receive(await bus.request(SUBJECTS.policyCurrent, request), 'current');
    } catch (err) {
      // No central sentinel yet (or not one with a set): its next announcement will do.
      log.debug({ error: messageOf(err) }, 'no answer on policy.current; waiting for an announcement');
    }
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  /** The total of refused reloads. */
  get refusedCount(): number {
    return Object.values(this.refused).reduce((a, b) => a + (b ?? 0), 0);
  }

  private async receive(data: Uint8Array, via: 'reload' | 'current'): Promise<void> {
    if (this.closed || data.byteLength > MAX_MESSAGE_BYTES) return;
    let message: unknown;
    try {
      message = JSON.parse(new TextDecoder().decode(data));
    } catch {
      this.refuse('not json', via);
      return;
    }
    // An answer without a set (the central sentinel has none yet) is not a reload.
    if (via === 'current' && typeof (message as { payload?: { revision?: unknown } })?.payload?.revision !== 'string') return;
    const verdict = this.filter.accept(message);
    if (!verdict.accept) {
      if (verdict.reason !== 'duplicate') this.refuse(verdict.reason, via);
      return;
    }
    let payload = verdict.payload;
    if (payload.transfer) {
      try {
        payload = await fetchReloadBody(payload, (subject, bytes) => this.options.bus.request(subject, bytes));
      } catch (err) {
        this.refuse('body unavailable', via, messageOf(err));
        return;
      }
    }
    const files = (payload.files ?? []).filter((f) => f.content !== undefined);
    if (files.some((f) => !isDeliverableName(f.path))) {
      this.refuse('unsafe name', via, files.map((f) => f.path).find((p) => !isDeliverableName(p)));
      return;
    }
    this.pending = payload;
    this.schedule(0);
  }

  private refuse(reason: RefusalReason, via: 'reload' | 'current', detail?: string): void {
    this.refused[reason] = (this.refused[reason] ?? 0) + 1;
    this.options.log.warn({ reason, via, ...(detail ? { detail } : {}), refused: this.refusedCount }, `refused a reload (${reason}); the delivered set stays`);
  }

  /** Writes the newest pending set, no sooner than DELIVERY_SPACING after the last write. */
  private schedule(extraWait: number): void {
    if (this.writing || this.closed || this.timer) return;
    const wait = Math.max(extraWait, this.lastWriteAt + DELIVERY_SPACING - performance.now());
    if (wait <= 0) {
      void this.write();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.write();
    }, wait);
  }

  private async write(): Promise<void> {
    const payload = this.pending;
    if (!payload || this.closed) return;
    this.pending = undefined;
    this.writing = true;
    const { dir, log } = this.options;
    const files: DeliveryFile[] = (payload.files ?? [])
      .filter((f) => f.content !== undefined)
      .map((f) => ({ path: f.path, sha256: f.sha256, bytes: contentBytes(f) as Buffer }));
    try {
      const delivered = await dir.write({ revision: payload.revision, issuedAt: payload.issuedAt ?? null, files });
      this.lastWriteAt = performance.now();
      this.delivered = delivered;
      const recovered = this.failure !== undefined;
      this.failure = undefined;
      if (recovered) this.options.onChange?.();
      this.retryWait = RETRY_FIRST;
      log.info({ revision: delivered.revision, files: files.length, dir: dir.dir, reason: payload.reason }, 'delivered the policy set');
      for (const listener of this.listeners) listener(delivered);
    } catch (err) {
      this.lastWriteAt = performance.now();
      this.failure = `could not write the set into ${dir.dir}: ${messageOf(err)}`;
      log.error({ revision: payload.revision, retryInMs: this.retryWait }, this.failure);
      // Tried again unless a newer set came meanwhile (then that one is written).
      this.pending ??= payload;
      const wait = this.retryWait;
      this.retryWait = Math.min(this.retryWait * 2, RETRY_MAX);
      this.options.onChange?.();
      this.writing = false;
      this.schedule(wait);
      return;
    }
    this.writing = false;
    if (this.pending) this.schedule(0);
  }
}

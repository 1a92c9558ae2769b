import { EventEmitter } from 'node:events';
import type { Msg } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { ERROR_CODES, messageOf } from '../errors.js';
import {
  SCHEMA_VERSION,
  rejectedPayload,
  reloadPayload,
  type Announced,
  type PolicyReloadPayload,
  type ReloadReason,
} from '../policy/announcements.js';
import type { ReloadSigner } from '../policy/signature.js';
import type { Snapshot } from '../policy/snapshot.js';
import type { PolicyReloader } from '../reload/reloader.js';
import { SUBJECTS } from '../topics.js';
import type { BusConnection } from './connection.js';
import { decodeEnvelope, encodeEnvelope, makeEnvelope } from './envelope.js';

/** The server's limit when it has not told us yet (nats-server's default). */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** Requests are small; anything bigger is not read. */
const MAX_REQUEST_BYTES = 64 * 1024;

export interface PolicyAnnouncerOptions {
  bus: BusConnection;
  reloader: PolicyReloader;
  /** The envelope `source`. */
  source: string;
  log: Logger;
  /** Signs every reload, when configured. */
  signer?: ReloadSigner | undefined;
}

/** One message put on the bus. */
export interface Announcement {
  subject: string;
  reason?: ReloadReason;
  revision: string;
  bytes: number;
}

/**
 * Puts the reloader's decisions on the bus: a reload for each new snapshot,
 * a rejection for each refused set, both again after every reconnect (the bus
 * keeps nothing for subscribers that were cut off), and the replies on
 * `nachos.system.policy.current`. While the bus is away nothing is queued:
 * the announcement on reconnect carries whatever is in force by then.
 */
export class PolicyAnnouncer extends EventEmitter<{ published: [announcement: Announcement] }> {
  /** The last revision announced, with its sequence number. */
  announced: Announced | undefined;
  private readonly unsubscribers: (() => void)[] = [];

  constructor(private readonly options: PolicyAnnouncerOptions) {
    super();
  }

  start(): void {
    const { bus, reloader } = this.options;
    this.listen(reloader, 'accepted', (snapshot: Snapshot) => this.announce(snapshot, this.announced ? 'change' : 'startup'));
    this.listen(reloader, 'rejected', () => this.announceRejection());
    this.listen(bus, 'connect', () => this.onConnect('startup'));
    this.listen(bus, 'reconnect', () => this.onConnect('reconnect'));
    if (bus.connected) this.onConnect('startup');
  }

  stop(): void {
    for (const off of this.unsubscribers.splice(0)) off();
  }

  private onConnect(reason: ReloadReason): void {
    const { reloader } = this.options;
    if (reloader.inForce) this.announce(reloader.inForce, this.announced ? reason : 'startup');
    if (reloader.lastRejection) this.announceRejection();
  }

  /** Announces `snapshot` (a new revision gets the next sequence number). */
  private announce(snapshot: Snapshot, reason: ReloadReason): void {
    const nc = this.options.bus.nc;
    if (!nc || !this.options.bus.connected) return; // announced on (re)connect instead
    if (this.announced?.snapshot.revision !== snapshot.revision) {
      this.announced = {
        snapshot,
        previous: this.announced?.snapshot,
        sequence: (this.announced?.sequence ?? 0) + 1,
      };
    }
    const data = this.encodeReload(this.announced, reason);
    this.publish(SUBJECTS.policyReload, data, { reason, revision: snapshot.revision });
  }

  private announceRejection(): void {
    const { reloader, bus, source } = this.options;
    const rejection = reloader.lastRejection;
    if (!rejection || !bus.nc || !bus.connected) return;
    const data = encodeEnvelope(makeEnvelope(SUBJECTS.policyRejected, source, rejectedPayload(rejection, reloader.inForce)));
    this.publish(SUBJECTS.policyRejected, data, { revision: rejection.revision });
  }

  private publish(subject: string, data: Uint8Array, meta: { reason?: ReloadReason; revision: string }): void {
    const { bus, log } = this.options;
    try {
      bus.nc?.publish(subject, data);
      log.info({ subject, ...meta, bytes: data.byteLength }, 'announced');
      this.emit('published', { subject, ...meta, bytes: data.byteLength });
    } catch (err) {
      log.error({ subject, revision: meta.revision, error: messageOf(err) }, 'could not publish; will announce again on reconnect');
    }
  }

  /**
   * The envelope for a reload, with the policy set inside when the whole
   * message fits the server's max_payload, and without it (saying so) otherwise.
   */
  private encodeReload(announced: Announced, reason: ReloadReason, correlationId?: string): Uint8Array {
    const { source, bus, signer } = this.options;
    const maxPayload = bus.nc?.info?.max_payload ?? DEFAULT_MAX_PAYLOAD;
    const subject = reason === 'request' ? SUBJECTS.policyCurrent : SUBJECTS.policyReload;
    const payload = reloadPayload(announced, reason, signer);
    const full = encodeEnvelope(makeEnvelope(subject, source, payload, { correlationId }));
    if (full.byteLength <= maxPayload) return full;
    // The signature covers the revision and the file hashes, not the set itself: it stays valid without it.
    const { policies: _omitted, ...rest } = payload;
    const omitted: PolicyReloadPayload = { ...rest, policiesOmitted: { reason: 'max_payload', bytes: full.byteLength, maxPayload } };
    return encodeEnvelope(makeEnvelope(subject, source, omitted, { correlationId }));
  }

  /** The reply to a `nachos.system.policy.current` request (the endpoint handler). */
  currentReply(msg: Msg): Uint8Array {
    const { source } = this.options;
    // The request body is optional; when it is an envelope, its id correlates the reply.
    const request = msg.data.byteLength > 0 ? decodeEnvelope(msg.data, MAX_REQUEST_BYTES) : undefined;
    const correlationId = request?.ok ? request.value.id : undefined;
    if (this.announced) return this.encodeReload(this.announced, 'request', correlationId);
    const payload = {
      schemaVersion: SCHEMA_VERSION,
      error: { code: ERROR_CODES.NO_SNAPSHOT, message: 'no valid policy snapshot is in force yet' },
    };
    return encodeEnvelope(makeEnvelope(SUBJECTS.policyCurrent, source, payload, { correlationId }));
  }

  private listen<E extends NodeJS.EventEmitter>(emitter: E, event: string, fn: (...args: never[]) => void): void {
    const handler = fn as (...args: unknown[]) => void;
    emitter.on(event, handler);
    this.unsubscribers.push(() => emitter.off(event, handler));
  }
}

import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Msg } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../clock.js';
import { ERROR_CODES, messageOf } from '../errors.js';
import { SKIP_FILE_HINT, type InvalidFileMode } from '../policy/invalid-files.js';
import {
  SCHEMA_VERSION,
  rejectedPayload,
  reloadBody,
  reloadHead,
  type Announced,
  type PolicyRejectedPayload,
  type PolicyReloadPayload,
  type ReloadReason,
} from '../policy/announcements.js';
import type { ReloadSigner } from '../policy/signature.js';
import type { PolicyState, Snapshot } from '../policy/snapshot.js';
import { policyTransfer, SUBJECTS } from '../protocol/topics.js';
import type { Flusher, Publisher } from '../protocol/ports.js';
import { decodeEnvelope, encodeEnvelope, makeEnvelope } from '../protocol/envelope.js';
import { ServiceError } from './micro-service.js';
import { inAudience } from '../protocol/audience.js';
import { ByteBudget, RequestGate, type GateLimits } from './request-gate.js';

/** Requests are small; anything bigger is not read. */
const MAX_REQUEST_BYTES = 64 * 1024;
/** Room left in each transfer part for the reply's own framing. */
const PART_HEADROOM = 512;
/** Bodies kept for transfer: the one announced last, and a few before it for subscribers still fetching. */
const KEPT_BODIES = 4;
/** `policy.current`: each subscriber asks once per connection; a whole fleet reconnecting at once is the burst. */
export const CURRENT_LIMITS: GateLimits = { perRequesterPerSecond: 5, perRequesterBurst: 10, totalPerSecond: 500, totalBurst: 1000 };
/** Transfer parts: a subscriber fetches a body's parts one after another. */
export const TRANSFER_LIMITS: GateLimits = { perRequesterPerSecond: 20, perRequesterBurst: 40, totalPerSecond: 200, totalBurst: 400 };
/** Bytes sent in replies per second, by both endpoints together. */
export const REPLY_BYTES_PER_SECOND = 64 * 1024 * 1024; // 64 MiB/s
/** Bytes of replies sent but not yet confirmed with the server, at most (and at least four whole messages). */
export const MAX_OUTSTANDING_BYTES = 16 * 1024 * 1024; // 16 MiB

export interface PolicyAnnouncerOptions {
  bus: Publisher & Flusher;
  policy: PolicyState;
  /** The envelope `source`. */
  source: string;
  /** This sentinel's instance id: its transfer subject ends with it. */
  instance: string;
  /** What an invalid file does (a rejection's hint names the other way). */
  invalidFiles: InvalidFileMode;
  log: Logger;
  /** Signs every reload, when configured. */
  signer?: ReloadSigner | undefined;
  /** Named in every reload: receivers of another deployment refuse it. */
  deployment: string;
  /** How long each statement holds; the set in force is announced again (`refresh`) at half of it. */
  expiresAfterMs: number;
  clock: Clock;
}

/** One message put on the bus. */
export interface Announcement {
  subject: string;
  reason?: ReloadReason;
  revision: string;
  bytes: number;
  /** The body did not fit: subscribers fetch it from the transfer subject. */
  transfer?: boolean;
  /** A canary's: who it is for. */
  audience?: readonly string[];
  /** The message as published (a reload's: what the history records with its entry). */
  message?: Uint8Array;
}

/** A publish that failed: the bus refused it or the connection broke under it. */
export interface PublishFailure {
  subject: string;
  revision: string;
  error: string;
  /** Wall-clock ms. */
  at: number;
}

/** A body announced by transfer, kept for the parts to be asked. */
interface KeptBody {
  bytes: Uint8Array;
  sha256: string;
  /** The part size its transfer announced. */
  partBytes: number;
}

/** A set stated to some of the subscribers: everyone (but those excluded), or a canary's audience. */
interface Stated {
  announced: Announced;
  /** Everyone-but: the canaries, while one runs. */
  excludes?: readonly string[];
  /** A canary's: only these. */
  audience?: readonly string[];
  /** The directory's revision this set stands in for, while a rollback (or a halted canary) holds. */
  replaces?: string;
  /** The last statement put on the bus, encoded (and signed) once: what policy.current requests are answered with. */
  data?: Uint8Array;
}

/**
 * Puts the rollout's decisions on the bus: a reload for each set put in
 * force, a rejection for each refused set, all again after every reconnect
 * (the bus keeps nothing for subscribers that were cut off), and the replies
 * on `nachos.system.policy.current`. While the bus is away nothing is queued:
 * the announcement on reconnect carries whatever is in force by then.
 *
 * It states at most two sets: the one for everyone, and, while a canary runs,
 * the canary's for its audience (the one for everyone then excludes the
 * canaries, so that its refreshes never take them back).
 *
 * Every reload reaches subscribers whatever the set's size: when the whole
 * message would exceed the server's max_payload, it carries a `transfer`
 * instead of the body, and the body is served in parts on this instance's
 * transfer subject (`transferReply`).
 */
export class PolicyAnnouncer extends EventEmitter<{ published: [announcement: Announcement]; publishFailed: [failure: PublishFailure] }> {
  /** The set in force for everyone, with its sequence number, once there is one. */
  announced: Announced | undefined;
  /** The last publish that failed, until one succeeds again. */
  publishFailure: PublishFailure | undefined;
  /** Publishes that failed since start. */
  publishFailures = 0;
  /** Bodies announced by transfer, by their SHA-256, newest last. */
  private readonly bodies = new Map<string, KeptBody>();
  private general: Stated | undefined;
  private canary: Stated | undefined;
  /** The last sequence number given: each set stated anew gets the next. */
  private sequence = 0;
  /** A reload was put on the bus since start (the first is `startup`). */
  private published = false;
  private refreshTimer: TimerHandle | undefined;
  /** What requesters may make us spend: counted, shed past the limits. */
  readonly currentGate: RequestGate;
  readonly transferGate: RequestGate;

  constructor(private readonly options: PolicyAnnouncerOptions) {
    super();
    const now = () => options.clock.now();
    const budget = new ByteBudget({
      bytesPerSecond: REPLY_BYTES_PER_SECOND,
      // A whole message always fits in the burst and in what may be outstanding.
      burstBytes: Math.max(MAX_OUTSTANDING_BYTES, 2 * options.bus.maxPayload),
      maxOutstandingBytes: Math.max(MAX_OUTSTANDING_BYTES, 4 * options.bus.maxPayload),
      bus: options.bus,
      now,
    });
    this.currentGate = new RequestGate(CURRENT_LIMITS, budget, now);
    this.transferGate = new RequestGate(TRANSFER_LIMITS, budget, now);
  }

  /** Where subscribers fetch bodies that did not fit. */
  get transferSubject(): string {
    return policyTransfer(this.options.instance);
  }

  /** The canary's set and audience, while one is offered. */
  get canaryAnnounced(): (Announced & { audience: readonly string[] }) | undefined {
    return this.canary ? { ...this.canary.announced, audience: this.canary.audience ?? [] } : undefined;
  }

  /**
   * Puts `snapshot` in force for everyone (but `excludes`: the canaries of a canary that runs), and says
   * so: the first reload of this instance is `startup`, whatever the reason. `replaces`: the directory's
   * revision it stands in for (a rollback).
   */
  announce(snapshot: Snapshot, reason: ReloadReason, scope: { replaces?: string | undefined; excludes?: readonly string[] | undefined } = {}): void {
    this.general = this.stated(this.general, snapshot, this.announced?.snapshot);
    this.general.replaces = scope.replaces;
    this.general.excludes = scope.excludes && scope.excludes.length > 0 ? [...scope.excludes] : undefined;
    this.announced = this.general.announced;
    this.state(this.general, reason);
  }

  /** Offers `snapshot` to `audience` only (a canary); undefined: the canary's set is no longer offered. */
  announceCanary(snapshot: Snapshot | undefined, audience: readonly string[] = []): void {
    if (!snapshot) {
      this.canary = undefined;
      return;
    }
    this.canary = this.stated(this.canary, snapshot, this.announced?.snapshot);
    this.canary.audience = [...audience];
    this.state(this.canary, 'canary');
  }

  /** The body of a statement whose body travelled apart (its `transfer`), while kept: what the history stream keeps beside it. */
  transferBody(message: Uint8Array): { sha256: string; bytes: Buffer } | undefined {
    const sha256 = (safeJson(message) as { payload?: { transfer?: { sha256?: unknown } } } | undefined)?.payload?.transfer?.sha256;
    const kept = typeof sha256 === 'string' ? this.bodies.get(sha256) : undefined;
    return kept ? { sha256: kept.sha256, bytes: Buffer.from(kept.bytes) } : undefined;
  }

  /** A set was refused. */
  rejected(): void {
    this.announceRejection();
  }

  /** Requests shed so far, by endpoint and why (for /metrics). */
  shedCounts(): { endpoint: string; why: string; count: number }[] {
    return [
      ['policy-current', this.currentGate],
      ['policy-transfer', this.transferGate],
    ].flatMap(([endpoint, gate]) => {
      const g = gate as RequestGate;
      return [...Object.entries(g.shed), ['unanswered', g.unanswered] as const].map(([why, count]) => ({ endpoint: endpoint as string, why, count }));
    });
  }

  /** Stops the refresh. */
  close(): void {
    if (this.refreshTimer) this.options.clock.clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
  }

  /** On the bus (first time, or again): it kept nothing for those who were cut off, so say again what is in force. */
  connected(): void {
    if (this.general) this.state(this.general, this.published ? 'reconnect' : 'startup');
    if (this.canary) this.state(this.canary, 'canary');
    if (this.options.policy.lastRejection) this.announceRejection();
  }

  /** `snapshot` as stated to one audience: a new revision there gets the next sequence number. */
  private stated(before: Stated | undefined, snapshot: Snapshot, previous: Snapshot | undefined): Stated {
    if (before?.announced.snapshot.revision === snapshot.revision) {
      // The same files (what was skipped may differ), told anew.
      return { ...before, announced: { ...before.announced, snapshot } };
    }
    return { announced: { snapshot, previous, sequence: ++this.sequence } };
  }

  /** Encodes (and signs) one audience's statement and publishes it, when connected. */
  private state(stated: Stated, reason: ReloadReason): void {
    const { bus } = this.options;
    if (!bus.connected) {
      stated.data = undefined;
      return; // announced on (re)connect instead
    }
    const first = !this.published && stated === this.general;
    const why = first ? 'startup' : reason;
    const { data, transfer } = this.encodeReload(stated, why);
    stated.data = data;
    this.scheduleRefresh();
    if (stated === this.general) this.published = true;
    const { revision } = stated.announced.snapshot;
    this.publish(SUBJECTS.policyReload, data, { reason: why, revision, transfer, ...(stated.audience ? { audience: stated.audience } : {}) });
  }

  /**
   * What is in force, signed and announced again at half its statement's validity, so that a receiver
   * always holds an unexpired statement of it while this sentinel runs (and notices when it does not).
   */
  private scheduleRefresh(): void {
    const { clock, expiresAfterMs } = this.options;
    if (this.refreshTimer) clock.clearTimeout(this.refreshTimer);
    this.refreshTimer = clock.setTimeout(() => {
      this.refreshTimer = undefined;
      if (this.general) this.state(this.general, 'refresh');
      if (this.canary) this.state(this.canary, 'refresh');
    }, expiresAfterMs / 2);
  }

  private announceRejection(): void {
    const { policy, bus, source, invalidFiles } = this.options;
    const rejection = policy.lastRejection;
    if (!rejection || !bus.connected) return;
    const hint = invalidFiles === 'reject-set' && rejection.problems.some((p) => p.file !== '') ? SKIP_FILE_HINT : undefined;
    const data = fitRejection(rejectedPayload(rejection, policy.inForce, hint), this.maxPayload, (payload) =>
      encodeEnvelope(makeEnvelope(SUBJECTS.policyRejected, source, payload, { now: this.now() })),
    );
    this.publish(SUBJECTS.policyRejected, data, { revision: rejection.revision });
  }

  /**
   * The server refused, after the fact, a publish on `subject` (its
   * permissions): nats.js reports that asynchronously, not as a throw. One of
   * ours is an announcement that did not go out.
   */
  publishRefused(subject: string, message: string): void {
    if (subject !== SUBJECTS.policyReload && subject !== SUBJECTS.policyRejected) return;
    this.publishFailures++;
    this.publishFailure = { subject, revision: this.announced?.snapshot.revision ?? '', error: message, at: this.now() };
    this.emit('publishFailed', this.publishFailure);
  }

  private publish(subject: string, data: Uint8Array, meta: { reason?: ReloadReason; revision: string; transfer?: boolean; audience?: readonly string[] }): void {
    const { bus, log } = this.options;
    try {
      bus.publish(subject, data);
      this.publishFailure = undefined;
      log.info({ subject, ...meta, bytes: data.byteLength }, 'announced');
      this.emit('published', { subject, ...meta, bytes: data.byteLength, message: data });
    } catch (err) {
      this.publishFailures++;
      this.publishFailure = { subject, revision: meta.revision, error: messageOf(err), at: this.now() };
      log.error({ subject, revision: meta.revision, bytes: data.byteLength, error: messageOf(err) }, 'could not publish; will announce again on reconnect');
      this.emit('publishFailed', this.publishFailure);
    }
  }

  private get maxPayload(): number {
    return this.options.bus.maxPayload;
  }

  private now(): number {
    return this.options.clock.wallNow();
  }

  /**
   * The envelope for a reload: the whole of it when it fits the server's
   * max_payload; else its head, with a `transfer` that says where to fetch
   * the body. Signed last, over exactly what is sent. Nothing of the body is
   * kept unless it is to be transferred: a thousand files' contents, twice
   * over, would be memory held for nothing.
   */
  private encodeReload(stated: Stated, reason: ReloadReason): { data: Uint8Array; transfer: boolean } {
    const { source, signer, deployment, expiresAfterMs } = this.options;
    const { announced, replaces, audience, excludes } = stated;
    const issuedAt = this.now();
    const head = reloadHead(announced, reason, { issuedAt, validForMs: expiresAfterMs, deployment, replaces, audience, excludes });
    const envelope = (payload: PolicyReloadPayload): Uint8Array => {
      const message = makeEnvelope(SUBJECTS.policyReload, source, payload, { now: issuedAt });
      return encodeEnvelope(signer ? signer.sign(message) : message);
    };
    const body = reloadBody(announced);
    const whole = envelope({ ...head, ...body });
    if (whole.byteLength <= this.maxPayload) return { data: whole, transfer: false };
    const bytes = new TextEncoder().encode(JSON.stringify(body));
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const partBytes = Math.max(1, this.maxPayload - PART_HEADROOM);
    this.keep({ bytes, sha256, partBytes });
    const transfer = { subject: this.transferSubject, sha256, bytes: bytes.byteLength, parts: Math.ceil(bytes.byteLength / partBytes), partBytes };
    return { data: envelope({ ...head, transfer }), transfer: true };
  }

  private keep(stored: KeptBody): void {
    this.bodies.delete(stored.sha256);
    this.bodies.set(stored.sha256, stored);
    while (this.bodies.size > KEPT_BODIES) this.bodies.delete(this.bodies.keys().next().value as string);
  }

  /**
   * The reply to a `nachos.system.policy.current` request (the endpoint handler): the last reload
   * announced, as it was encoded and signed once, with the request's correlation id put in front
   * (it is not signed: it only pairs the reply with its request). Past the limits, an ADR-32 503,
   * or nothing during a flood.
   */
  currentReply(msg: Msg): Uint8Array | undefined {
    const { source } = this.options;
    // The request body is optional: nothing, or a JSON object; when it is an envelope, its correlationId
    // (else its id) correlates the reply, as Nachos' own bus client matches replies.
    let correlationId: string | undefined;
    let requester: { component: string; instance?: string } | undefined;
    if (msg.data.byteLength > 0) {
      const body = msg.data.byteLength <= MAX_REQUEST_BYTES ? safeJson(msg.data) : undefined;
      if (body === null || typeof body !== 'object' || Array.isArray(body)) {
        throw new ServiceError(400, 'a policy.current request is empty, or a JSON object (a Nachos envelope, say)');
      }
      const request = decodeEnvelope(msg.data, MAX_REQUEST_BYTES);
      correlationId = request.ok ? (request.value.correlationId ?? request.value.id) : undefined;
      requester = whoAsks(request.ok ? request.value.payload : body);
    }
    const stated = this.canary?.data && inAudience(this.canary.audience ?? [], requester) ? this.canary : this.general;
    let data: Uint8Array;
    if (stated?.data) data = correlationId === undefined ? stated.data : withCorrelationId(stated.data, correlationId);
    else {
      const payload = {
        schemaVersion: SCHEMA_VERSION,
        error: { code: ERROR_CODES.NO_SNAPSHOT, message: 'no valid policy snapshot is in force yet' },
      };
      data = encodeEnvelope(makeEnvelope(SUBJECTS.policyCurrent, source, payload, { correlationId }));
    }
    return this.gated(this.currentGate, msg, data);
  }

  /**
   * One part of a body that did not fit (the transfer endpoint's handler):
   * the request is `{ "sha256": ..., "part": n }` (bare, or as an envelope's
   * payload); the reply is the part's raw bytes.
   */
  transferReply(msg: Msg): Uint8Array | undefined {
    const request = readTransferRequest(msg.data);
    if (!request) throw new ServiceError(400, 'a transfer request is {"sha256": "<hex>", "part": <n>}');
    const stored = this.bodies.get(request.sha256);
    if (!stored) throw new ServiceError(404, `no body ${request.sha256.slice(0, 12)} here any more; ask ${SUBJECTS.policyCurrent} again`);
    const start = request.part * stored.partBytes;
    if (start >= stored.bytes.byteLength) throw new ServiceError(400, `part ${request.part} is past the end`);
    return this.gated(this.transferGate, msg, stored.bytes.subarray(start, start + stored.partBytes));
  }

  /** `data` when the gate admits it; else a 503 while refusals are cheap, else nothing. */
  private gated(gate: RequestGate, msg: Msg, data: Uint8Array): Uint8Array | undefined {
    const verdict = gate.admit(msg.reply, data.byteLength);
    if (verdict === 'ok') return data;
    if (!gate.mayRefuse()) return undefined;
    throw new ServiceError(503, verdict === 'requester' ? 'too many requests from you; ask again in a second' : 'busy; ask again in a second');
  }
}

const OPEN_BRACE = 0x7b;

/** Who asks for the set in force, as its request says (`{component, instance}`): a canary is answered with the canary's set. */
function whoAsks(payload: unknown): { component: string; instance?: string } | undefined {
  const { component, instance } = (payload ?? {}) as { component?: unknown; instance?: unknown };
  if (typeof component !== 'string') return undefined;
  return typeof instance === 'string' ? { component, instance } : { component };
}

/** `{...}` -> `{"correlationId":"<id>",...}`: the encoded message, not encoded again. */
function withCorrelationId(data: Uint8Array, correlationId: string): Uint8Array {
  const prefix = Buffer.from(`{"correlationId":${JSON.stringify(correlationId)},`);
  return data[0] === OPEN_BRACE ? Buffer.concat([prefix, data.subarray(1)]) : data;
}

function readTransferRequest(data: Uint8Array): { sha256: string; part: number } | undefined {
  const decoded = data.byteLength > 0 && data.byteLength <= MAX_REQUEST_BYTES ? safeJson(data) : undefined;
  const body = ((decoded as { payload?: unknown } | null)?.payload ?? decoded) as { sha256?: unknown; part?: unknown } | null | undefined;
  if (typeof body?.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(body.sha256)) return undefined;
  if (typeof body.part !== 'number' || !Number.isSafeInteger(body.part) || body.part < 0) return undefined;
  return { sha256: body.sha256, part: body.part };
}

function safeJson(data: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
  } catch {
    return undefined;
  }
}

/**
 * A rejection that fits the server's max_payload: every list whole when it
 * fits, else cut (errors last), saying how much was left out.
 */
function fitRejection(payload: PolicyRejectedPayload, maxPayload: number, encode: (p: PolicyRejectedPayload) => Uint8Array): Uint8Array {
  let data = encode(payload);
  for (const keep of [100, 10, 1, 0]) {
    if (data.byteLength <= maxPayload) break;
    const cut = {
      ...payload,
      errors: payload.errors.slice(0, Math.max(keep, 1)),
      warnings: payload.warnings.slice(0, keep),
      files: payload.files.slice(0, keep),
    };
    cut.truncated = {
      errors: payload.errors.length - cut.errors.length,
      warnings: payload.warnings.length - cut.warnings.length,
      files: payload.files.length - cut.files.length,
    };
    data = encode(cut);
  }
  return data;
}

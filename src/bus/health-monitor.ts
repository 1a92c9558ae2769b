import { EventEmitter } from 'node:events';
import type { Msg } from '@nats-io/transport-node';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { Logger } from 'pino';
import type { RolloutView } from '../health/rollout-ledger.js';
import type { Clock } from '../clock.js';
import { messageOf } from '../errors.js';
import { HealthAggregator, PAUSE_AFTER, type Transition } from '../health/aggregator.js';
import { HeartbeatSchema } from '../health/heartbeat-payload.js';
import type { HeartbeatTrust } from '../health/heartbeat-trust.js';
import { fitStatus, type HealthStatusPayload, type IngestCounters } from '../health/status-payload.js';
import { SUBJECTS } from '../protocol/topics.js';
import type { SentinelConfig } from '../config/settings.js';
import { decodeEnvelope, encodeEnvelope, isEnvelope, makeEnvelope } from '../protocol/envelope.js';
import { ServiceError } from './micro-service.js';
import type { Flusher, Publisher, Subscriber } from '../protocol/ports.js';

export type { HealthStatusPayload, IngestCounters } from '../health/status-payload.js';

/** Heartbeats are small; anything larger is refused unread. */
export const MAX_HEARTBEAT_BYTES = 64 * 1024;
/** How often silence is judged: the precision of suspect and stale detection. */
export const SWEEP_INTERVAL = 100; // ms
/** The server is stalled when a ping sent on the sweep is not answered within this. */
export const STALL_AFTER = 500; // ms
const MAX_REQUEST_BYTES = 4096;
/** A status reply is built at most this often while things change, and kept at most this long while they do not. */
export const STATUS_REBUILD_EVERY = 100; // ms
export const STATUS_KEPT_FOR = 1000; // ms
/** Instance transitions published per second at most, in bursts of up to TRANSITION_BURST: past that, counted and dropped. */
export const TRANSITIONS_PER_SECOND = 1000;
export const TRANSITION_BURST = 5000;
/** Status requests answered per second, in bursts of up to STATUS_BURST; past it they get an ADR-32 503, so heartbeats go first. */
export const STATUS_REQUESTS_PER_SECOND = 50;
export const STATUS_BURST = 100;

const checkHeartbeat = TypeCompiler.Compile(HeartbeatSchema);

/** The settings it reads, by their names in the configuration. */
export type HealthSettings = Pick<SentinelConfig, 'component' | 'healthIntervalMs' | 'required' | 'optional' | 'maxInstances'> &
  Partial<Pick<SentinelConfig, 'maxInstancesPerComponent' | 'maxIntervalMs'>>;

export interface HealthMonitorOptions extends HealthSettings {
  bus: Publisher & Flusher & Subscriber;
  clock: Clock;
  instance: string;
  log: Logger;
  /**
   * Whether an envelope id is one of our own latest heartbeats (the heartbeat
   * publisher's). We hear our own heartbeats back (that is how being cut off is
   * found), so our (component, instance) cannot be ignored; one under our name
   * with an id we did not publish is an impostor's, and is. Without it, none is.
   */
  isOwnHeartbeat?: (id: string) => boolean;
  /** Components whose heartbeats must be signed by their keys ([health.trust]). */
  trust?: HeartbeatTrust;
  /** The rollout's ledger, in every status reply. */
  rollout?: () => RolloutView;
}

interface BuiltStatus {
  /** The payload's JSON bytes, fitted to max_payload. */
  bytes: Uint8Array;
  builtAt: number;
  /** The change count it was built at. */
  version: number;
}

/**
 * The bus side of the aggregator: it feeds every heartbeat heard on
 * `nachos.system.health` to the aggregator, sweeps for silence, pings the
 * server on the sweep (a server that stops answering is a stall, not
 * everyone's failure), publishes each transition on
 * `nachos.system.health.changed`, and answers `nachos.system.health.status`
 * from a reply built once per change. Nothing from the network can throw past it.
 */
export class HealthMonitor extends EventEmitter<{ transition: [transition: Transition] }> {
  readonly aggregator: HealthAggregator;
  readonly counters: IngestCounters = {
    received: 0,
    accepted: 0,
    left: 0,
    ignored: 0,
    rejected: { oversized: 0, encoding: 0, json: 0, envelope: 0, payload: 0, signature: 0, impostor: 0 },
    refused: 0,
    evicted: 0,
  };
  /** Leaving: heartbeats are no longer taken in. */
  private left = false;
  /** Status requests turned away with a 503 since start. */
  shed = 0;
  /** Instance transitions not published, past the rate (a flood). */
  transitionsDropped = 0;
  private transitionTokens = TRANSITION_BURST;
  private transitionTokensAt: number;
  private sweep: NodeJS.Timeout | undefined;
  private lastSweepAt: number;
  /** When the ping in flight was sent (or a pause ended), if one is in flight. */
  private pingSentAt: number | undefined;
  private pingId = 0;
  /** Changes of the view (transitions) since start: a built reply is current while this has not moved. */
  private version = 0;
  private readonly built = new Map<string, BuiltStatus>();
  private tokens = STATUS_BURST;
  private tokensAt: number;

  /** The roster as it is judged: the sentinel always counts itself as required. */
  readonly required: string[];
  private readonly rostered: Set<string>;

  constructor(private readonly options: HealthMonitorOptions) {
    super();
    this.lastSweepAt = options.clock.now();
    this.tokensAt = options.clock.now();
    this.transitionTokensAt = options.clock.now();
    this.required = options.required.includes(options.component) ? [...options.required] : [...options.required, options.component];
    this.rostered = new Set([...this.required, ...options.optional]);
    this.aggregator = new HealthAggregator({
      clock: options.clock,
      intervalMs: options.healthIntervalMs,
      required: this.required,
      optional: options.optional,
      maxInstances: options.maxInstances,
      maxPerComponent: options.maxInstancesPerComponent,
      maxIntervalMs: options.maxIntervalMs,
      self: { component: options.component, instance: options.instance },
      onTransition: (t) => this.transition(t),
      onPause: (gapMs) => options.log.warn({ pausedMs: Math.round(gapMs) }, 'the sentinel was paused; judging silence again from now'),
      onRosterDisagreement: (d) => {
        if (d) options.log.warn({ sentinels: d.sentinels }, 'sentinels disagree on the roster: their answers differ; give every replica the same --require and --optional');
        else options.log.info('sentinels agree on the roster again');
      },
    });
  }

  /** Listens on `nachos.system.health` (every replica keeps the whole view: no queue group) and starts the sweep. */
  start(): void {
    this.options.bus.subscribe(SUBJECTS.health, (data) => this.ingest(data));
    this.sweep = setInterval(() => this.onSweep(), SWEEP_INTERVAL);
    this.sweep.unref();
  }

  /** On the bus (first time, or again): silence is judged again from now, after a grace interval. */
  connected(): void {
    this.pingSentAt = undefined;
    this.pingId++;
    this.aggregator.setConnected(true);
  }

  disconnected(): void {
    this.aggregator.setConnected(false);
  }

  stop(): void {
    if (this.sweep) clearInterval(this.sweep);
  }

  /** The sentinel is leaving: nothing more is judged or said (its own last heartbeat is not news). */
  leaving(): void {
    this.stop();
    this.left = true;
  }

  /** Each sweep: ping the server (one ping in flight at most), then judge silence. */
  private onSweep(): void {
    const now = this.options.clock.now();
    // A late sweep: the process was paused, not the server; the ping in flight is timed from now.
    if (now - this.lastSweepAt > PAUSE_AFTER && this.pingSentAt !== undefined) this.pingSentAt = now;
    this.lastSweepAt = now;
    this.ping(now);
    this.aggregator.tick();
  }

  private ping(now: number): void {
    const { bus, log } = this.options;
    if (!bus.connected) return;
    if (this.pingSentAt === undefined) {
      const id = ++this.pingId;
      this.pingSentAt = now;
      bus.flush().then(
        () => {
          if (id !== this.pingId) return;
          this.pingSentAt = undefined;
          if (this.aggregator.cutOff?.startsWith(STALL_REASON)) log.info('the bus answers again');
          this.aggregator.setStalled(undefined);
        },
        () => {
          if (id === this.pingId) this.pingSentAt = undefined;
        },
      );
    } else if (now - this.pingSentAt > STALL_AFTER) {
      const reason = `${STALL_REASON} for ${((now - this.pingSentAt) / 1000).toFixed(1)} s`;
      if (this.aggregator.cutOff === undefined) log.warn({ waitedMs: Math.round(now - this.pingSentAt) }, 'the bus does not answer; judging no one until it does');
      this.aggregator.setStalled(reason);
    }
  }

  /** Takes in one message from the wire. Never throws. */
  ingest(data: Uint8Array): void {
    if (this.left) return;
    this.counters.received++;
    const decoded = decodeEnvelope(data, MAX_HEARTBEAT_BYTES, checkHeartbeat);
    if (!decoded.ok) {
      this.counters.rejected[decoded.reason]++;
      this.options.log.debug({ reason: decoded.reason, detail: decoded.detail.slice(0, 200) }, 'heartbeat ignored');
      return;
    }
    const { id, payload } = decoded.value;
    const { component, instance, isOwnHeartbeat, log } = this.options;
    if (isOwnHeartbeat && payload.component === component && (payload.instance ?? payload.component) === instance && !isOwnHeartbeat(id)) {
      this.counters.rejected.impostor++;
      log.debug({ id: id.slice(0, 64), status: payload.status, state: payload.state ?? null }, 'heartbeat ignored: it claims to be this sentinel, which did not send it');
      return;
    }
    const trust = this.options.trust;
    if (trust?.enabled) {
      const verdict = trust.judge(decoded.value);
      if (verdict !== 'ok' && verdict !== 'unprotected') {
        this.counters.rejected.signature++;
        log.debug({ component: payload.component, instance: payload.instance ?? null, why: verdict }, 'heartbeat ignored: its component is protected, and it is not signed by one of its keys, fresh and once');
        return;
      }
    }
    const outcome = this.aggregator.ingest(payload);
    if (outcome === 'refused') this.counters.refused++;
    else if (outcome === 'left') this.counters.left++;
    else if (outcome === 'tracked') this.counters.accepted++;
    else {
      // A goodbye from an instance not tracked (never heard, or already gone): nothing to do, but counted.
      this.counters.ignored++;
      this.options.log.debug({ component: payload.component, instance: payload.instance ?? null }, 'stopping heartbeat of an instance not tracked: ignored');
    }
  }

  /**
   * The reply to a status request (the endpoint handler): from a reply built
   * at most every STATUS_REBUILD_EVERY while the view changes, and kept up to
   * STATUS_KEPT_FOR while it does not. A malformed request is a 400; past the
   * rate, a 503: a flood of requests never starves the heartbeats.
   */
  statusReply(msg: Msg): Uint8Array {
    const request = readStatusRequest(msg.data);
    if (!request.ok) throw new ServiceError(400, request.error);
    if (!this.takeToken()) {
      this.shed++;
      throw new ServiceError(503, 'too many status requests; ask again in a second');
    }
    const payload = this.builtStatus(request.component);
    const head = makeEnvelope(SUBJECTS.healthStatus, this.options.component, null, { correlationId: request.correlationId, now: this.options.clock.wallNow() });
    const { payload: _payload, ...fields } = head;
    // The envelope around the payload built once: copied, not encoded again, per request.
    return Buffer.concat([Buffer.from(`${JSON.stringify(fields).slice(0, -1)},"payload":`), payload, CLOSE_BRACE]);
  }

  private takeTransitionToken(): boolean {
    const now = this.options.clock.now();
    this.transitionTokens = Math.min(TRANSITION_BURST, this.transitionTokens + ((now - this.transitionTokensAt) / 1000) * TRANSITIONS_PER_SECOND);
    this.transitionTokensAt = now;
    if (this.transitionTokens < 1) return false;
    this.transitionTokens--;
    return true;
  }

  private takeToken(): boolean {
    const now = this.options.clock.now();
    this.tokens = Math.min(STATUS_BURST, this.tokens + ((now - this.tokensAt) / 1000) * STATUS_REQUESTS_PER_SECOND);
    this.tokensAt = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }

  private builtStatus(component: string | undefined): Uint8Array {
    const now = this.options.clock.now();
    const key = component ?? '';
    const cached = this.built.get(key);
    if (cached && now - cached.builtAt < STATUS_KEPT_FOR && (cached.version === this.version || now - cached.builtAt < STATUS_REBUILD_EVERY)) return cached.bytes;
    const maxPayload = this.options.bus.maxPayload - ENVELOPE_ROOM;
    const payload = fitStatus(this.statusPayload(component), maxPayload, (p) => Buffer.byteLength(JSON.stringify(p)));
    const bytes = Buffer.from(JSON.stringify(payload));
    // One per component asked about, a handful in practice; a flood of made-up names must not grow it.
    if (this.built.size > 64) this.built.clear();
    this.built.set(key, { bytes, builtAt: now, version: this.version });
    return bytes;
  }

  /** Something a status reply shows changed outside the aggregator (the rollout): replies are built anew. */
  invalidate(): void {
    this.version++;
  }

  statusPayload(component?: string): HealthStatusPayload {
    const { clock, bus, optional } = this.options;
    const required = this.required;
    return {
      schemaVersion: 1,
      generatedAt: new Date(clock.wallNow()).toISOString(),
      sentinel: { component: this.options.component, instance: this.options.instance, connected: bus.connected },
      roster: { required, optional },
      ...this.aggregator.view(component),
      ingest: this.counters,
      ...(this.options.rollout ? { rollout: this.options.rollout() } : {}),
    };
  }

  private transition(t: Transition): void {
    const { bus, log, component } = this.options;
    this.version++;
    if (t.reason === 'evicted') this.counters.evicted++;
    // Routine, or a flood's churn: instances coming and going, components outside the roster appearing and leaving.
    const quiet =
      (t.scope === 'instance' && (t.reason === 'join' || t.reason === 'heard' || t.reason === 'reported' || t.reason === 'evicted')) ||
      (t.scope === 'component' && t.component !== null && !this.rostered.has(t.component) && t.to !== 'unhealthy');
    // Worse is a warning, better (healthy, heard again) is news. Nested: the transition's own
    // `component` and `instance` must not shadow the log line's.
    const better = t.to === 'healthy' || t.to === 'gone' || (t.from === null && t.to === 'degraded');
    const level = quiet ? 'debug' : better ? 'info' : 'warn';
    const what = t.scope === 'overall' ? 'overall' : `${t.component}${t.instance ? `/${t.instance}` : ''}`;
    log[level]({ transition: t }, `health: ${what} ${t.from ?? 'new'} -> ${t.to}: ${t.why}`);
    this.emit('transition', t);
    if (!bus.connected) return;
    // A flood of forged heartbeats must not be amplified onto the bus: past the rate, instance transitions are counted, not published.
    if (t.scope === 'instance' && !this.takeTransitionToken()) {
      this.transitionsDropped++;
      return;
    }
    try {
      bus.publish(SUBJECTS.healthChanged, encodeEnvelope(makeEnvelope(SUBJECTS.healthChanged, component, { schemaVersion: 1, ...t })));
    } catch (err) {
      log.warn({ error: messageOf(err) }, 'could not publish a health transition');
    }
  }
}

const STALL_REASON = 'cut off from the bus: the server has not answered a ping';
const CLOSE_BRACE = Buffer.from('}');
/** Bytes kept for the envelope around a status payload (ids, timestamps, names). */
const ENVELOPE_ROOM = 1024;

const requestDecoder = new TextDecoder('utf-8', { fatal: true });

export type StatusRequest = { ok: true; component: string | undefined; correlationId: string | undefined } | { ok: false; error: string };

/**
 * What a status request asks, read once and never trusted: the component
 * named in its payload (or in a bare `{"component": ...}`), and the id to
 * answer to when it is an envelope: its `correlationId` when it has one,
 * else its `id`, as Nachos' own bus client matches replies. An empty request
 * asks for everything; anything that is not JSON, or names a component that
 * is not a string, is refused. Never throws.
 */
export function readStatusRequest(data: Uint8Array): StatusRequest {
  if (data.byteLength === 0) return { ok: true, component: undefined, correlationId: undefined };
  if (data.byteLength > MAX_REQUEST_BYTES) return { ok: false, error: `a status request is at most ${MAX_REQUEST_BYTES} bytes` };
  let value: unknown;
  try {
    value = JSON.parse(requestDecoder.decode(data));
  } catch {
    return { ok: false, error: 'a status request is empty, or JSON: {"component": "<name>"}, bare or as an envelope\'s payload' };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { ok: false, error: 'a status request is a JSON object' };
  const envelope = isEnvelope(value) ? value : undefined;
  const body = envelope ? envelope.payload : value;
  if (body !== undefined && body !== null && (typeof body !== 'object' || Array.isArray(body))) return { ok: false, error: 'a status request\'s payload is a JSON object' };
  const component = (body as { component?: unknown } | null)?.component;
  if (component !== undefined && (typeof component !== 'string' || component.length === 0 || component.length > 64)) {
    return { ok: false, error: '"component" is a component name: a string of 1 to 64 characters' };
  }
  return { ok: true, component: component as string | undefined, correlationId: envelope ? (envelope.correlationId ?? envelope.id) : undefined };
}

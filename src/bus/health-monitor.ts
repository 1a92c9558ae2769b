import { EventEmitter } from 'node:events';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { messageOf } from '../errors.js';
import { HealthAggregator, type StatusView, type Transition } from '../health/aggregator.js';
import { HeartbeatSchema } from '../health/heartbeat-payload.js';
import { SUBJECTS } from '../topics.js';
import type { BusConnection } from './connection.js';
import { decodeEnvelope, encodeEnvelope, isEnvelope, makeEnvelope, type DecodeFailure } from './envelope.js';

/** Heartbeats are small; anything larger is refused unread. */
export const MAX_HEARTBEAT_BYTES = 64 * 1024;
/** How often silence is judged: the precision of suspect and stale detection. */
export const SWEEP_INTERVAL = 100; // ms
const MAX_REQUEST_BYTES = 4096;
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

const checkHeartbeat = TypeCompiler.Compile(HeartbeatSchema);

/** Payload of the reply on `nachos.system.health.status`. */
export interface HealthStatusPayload extends StatusView {
  schemaVersion: 1;
  generatedAt: string;
  sentinel: { component: string; instance: string; connected: boolean };
  roster: { required: string[]; optional: string[] };
  ingest: IngestCounters;
  /** Instances were left out to fit the server's max_payload; counts stay exact. */
  truncated?: boolean;
}

export interface IngestCounters {
  received: number;
  accepted: number;
  left: number;
  /** Refused unread or invalid, by why. */
  rejected: Record<DecodeFailure, number>;
  /** Valid, but over the instance cap. */
  refused: number;
}

export interface HealthMonitorOptions {
  bus: BusConnection;
  clock: Clock;
  component: string;
  instance: string;
  intervalMs: number;
  required: string[];
  optional: string[];
  maxInstances: number;
  log: Logger;
}

/**
 * The bus side of the aggregator: it feeds every heartbeat heard on
 * `nachos.system.health` to the aggregator, sweeps for silence, publishes
 * each transition on `nachos.system.health.changed`, and builds the replies
 * to `nachos.system.health.status`. Nothing from the network can throw past it.
 */
export class HealthMonitor extends EventEmitter<{ transition: [transition: Transition] }> {
  readonly aggregator: HealthAggregator;
  readonly counters: IngestCounters = {
    received: 0,
    accepted: 0,
    left: 0,
    rejected: { oversized: 0, encoding: 0, json: 0, envelope: 0, payload: 0 },
    refused: 0,
  };
  private sub: Subscription | undefined;
  private subNc: NatsConnection | undefined;
  private sweep: NodeJS.Timeout | undefined;
  private readonly unsubscribers: (() => void)[] = [];

  constructor(private readonly options: HealthMonitorOptions) {
    super();
    this.aggregator = new HealthAggregator({
      clock: options.clock,
      intervalMs: options.intervalMs,
      required: options.required,
      optional: options.optional,
      maxInstances: options.maxInstances,
      onTransition: (t) => this.transition(t),
    });
  }

  start(): void {
    const { bus } = this.options;
    const up = () => {
      this.subscribe();
      this.aggregator.setConnected(true);
    };
    const down = () => this.aggregator.setConnected(false);
    bus.on('connect', up);
    bus.on('reconnect', up);
    bus.on('disconnect', down);
    this.unsubscribers.push(
      () => bus.off('connect', up),
      () => bus.off('reconnect', up),
      () => bus.off('disconnect', down),
    );
    if (bus.connected) up();
    this.sweep = setInterval(() => this.aggregator.tick(), SWEEP_INTERVAL);
    this.sweep.unref();
  }

  stop(): void {
    for (const off of this.unsubscribers.splice(0)) off();
    if (this.sweep) clearInterval(this.sweep);
    this.sub?.unsubscribe();
    this.sub = undefined;
    this.subNc = undefined;
  }

  /** Takes in one message from the wire. Never throws. */
  ingest(data: Uint8Array): void {
    this.counters.received++;
    const decoded = decodeEnvelope(data, MAX_HEARTBEAT_BYTES, checkHeartbeat);
    if (!decoded.ok) {
      this.counters.rejected[decoded.reason]++;
      this.options.log.debug({ reason: decoded.reason, detail: decoded.detail.slice(0, 200) }, 'heartbeat ignored');
      return;
    }
    const outcome = this.aggregator.ingest(decoded.value.payload);
    if (outcome === 'refused') this.counters.refused++;
    else if (outcome === 'left') this.counters.left++;
    else if (outcome === 'tracked') this.counters.accepted++;
  }

  /** The reply to a status request (the endpoint handler). */
  statusReply(msg: Msg): Uint8Array {
    const { component, correlationId } = readStatusRequest(msg.data);
    const maxPayload = this.options.bus.nc?.info?.max_payload ?? DEFAULT_MAX_PAYLOAD;
    let payload = this.statusPayload(component);
    let data = this.encodeStatus(payload, correlationId);
    // Too big for one message: keep every component and count, fewer instances each.
    for (const keep of [100, 10, 0]) {
      if (data.byteLength <= maxPayload) break;
      payload = { ...payload, truncated: true, components: payload.components.map((c) => ({ ...c, instances: c.instances.slice(0, keep) })) };
      payload.policy = { ...payload.policy, behind: payload.policy.behind.slice(0, keep) };
      data = this.encodeStatus(payload, correlationId);
    }
    return data;
  }

  statusPayload(component?: string): HealthStatusPayload {
    const { clock, bus, required, optional } = this.options;
    return {
      schemaVersion: 1,
      generatedAt: new Date(clock.wallNow()).toISOString(),
      sentinel: { component: this.options.component, instance: this.options.instance, connected: bus.connected },
      roster: { required, optional },
      ...this.aggregator.view(component),
      ingest: this.counters,
    };
  }

  private encodeStatus(payload: HealthStatusPayload, correlationId: string | undefined): Uint8Array {
    return encodeEnvelope(makeEnvelope(SUBJECTS.healthStatus, this.options.component, payload, { correlationId }));
  }

  private subscribe(): void {
    const nc = this.options.bus.nc;
    // nats.js re-subscribes after a reconnect; only a new connection needs a new subscription.
    if (!nc || this.subNc === nc) return;
    this.subNc = nc;
    // No queue group: every sentinel replica keeps the whole view.
    this.sub = nc.subscribe(SUBJECTS.health, {
      callback: (err, msg) => {
        if (!err) this.ingest(msg.data);
      },
    });
  }

  private transition(t: Transition): void {
    const { bus, log, component } = this.options;
    const quiet = t.scope === 'instance' && (t.reason === 'join' || t.reason === 'heard' || t.reason === 'reported');
    // Nested: the transition's own `component` and `instance` must not shadow the log line's.
    const level = quiet ? 'debug' : t.to === 'stale' || t.to === 'unhealthy' || t.to === 'missing' ? 'warn' : 'info';
    log[level]({ transition: t }, 'health transition');
    this.emit('transition', t);
    const nc = bus.nc;
    if (!nc || !bus.connected) return;
    try {
      nc.publish(SUBJECTS.healthChanged, encodeEnvelope(makeEnvelope(SUBJECTS.healthChanged, component, { schemaVersion: 1, ...t })));
    } catch (err) {
      log.warn({ error: messageOf(err) }, 'could not publish a health transition');
    }
  }
}

const requestDecoder = new TextDecoder('utf-8', { fatal: true });

/**
 * What a status request asks, read once and never trusted: the component
 * named in its payload (or in a bare `{"component": ...}`), and the id to
 * answer to when it is an envelope. Anything else asks for everything. Never throws.
 */
export function readStatusRequest(data: Uint8Array): { component: string | undefined; correlationId: string | undefined } {
  const none = { component: undefined, correlationId: undefined };
  if (data.byteLength === 0 || data.byteLength > MAX_REQUEST_BYTES) return none;
  let value: unknown;
  try {
    value = JSON.parse(requestDecoder.decode(data));
  } catch {
    return none;
  }
  const body = (value as { payload?: unknown } | null)?.payload ?? value;
  const component = (body as { component?: unknown } | null)?.component;
  return {
    component: typeof component === 'string' && component.length > 0 && component.length <= 64 ? component : undefined,
    correlationId: isEnvelope(value) ? value.id : undefined,
  };
}

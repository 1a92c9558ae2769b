import { randomBytes } from 'node:crypto';
import { headers as natsHeaders, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { messageOf } from '../errors.js';

/**
 * A NATS micro service (ADR-32), so that standard tooling (`nats micro ls`,
 * `nats micro info`, `nats micro stats`) discovers the sentinel and its
 * endpoints: it answers `$SRV.PING|INFO|STATS`, `$SRV.<verb>.<name>` and
 * `$SRV.<verb>.<name>.<id>`, and counts requests, errors and processing time
 * per endpoint.
 *
 * Written here rather than taken from `@nats-io/services`, whose only release
 * for the 3.x client line is a prerelease pinned to a prerelease nats-core
 * (it would install a second, older copy of the client core).
 * https://github.com/nats-io/nats-architecture-and-design/blob/main/adr/ADR-32.md
 */

/** A handler's refusal with the ADR-32 error code to answer with (400 for a bad request, and so on); anything else thrown is a 500. */
export class ServiceError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'ServiceError';
  }
}

export interface EndpointConfig {
  name: string;
  subject: string;
  /** The queue group (one of the service's instances answers each request); none: every instance gets every request. */
  queue: string | undefined;
  metadata?: Record<string, string>;
  /**
   * Returns the reply; a throw is counted as an error and answered with the error headers; undefined
   * sends nothing (a flood past what the endpoint answers even with an error).
   */
  handler: (msg: Msg) => Uint8Array | undefined | Promise<Uint8Array | undefined>;
}

export interface ServiceConfig {
  name: string;
  version: string;
  description: string;
  metadata?: Record<string, string>;
}

interface EndpointState extends EndpointConfig {
  sub?: Subscription;
  numRequests: number;
  numErrors: number;
  lastError: string;
  processingNs: bigint;
}

const VERBS = ['PING', 'INFO', 'STATS'] as const;

export class MicroService {
  /** Unique per service instance, as ADR-32 asks. */
  readonly id = randomBytes(11).toString('hex').toUpperCase();
  private readonly endpoints: EndpointState[] = [];
  private readonly subs: Subscription[] = [];
  private started = '';
  private nc: NatsConnection | undefined;

  constructor(private readonly config: ServiceConfig) {}

  addEndpoint(endpoint: EndpointConfig): void {
    this.endpoints.push({ ...endpoint, numRequests: 0, numErrors: 0, lastError: '', processingNs: 0n });
  }

  /**
   * Subscribes the discovery subjects and the endpoints on `nc`. nats.js
   * re-subscribes them after a reconnect; a new connection gets them anew.
   */
  start(nc: NatsConnection): void {
    if (this.nc === nc) return;
    this.stop();
    this.nc = nc;
    this.started ||= new Date().toISOString();
    for (const verb of VERBS) {
      for (const subject of [`$SRV.${verb}`, `$SRV.${verb}.${this.config.name}`, `$SRV.${verb}.${this.config.name}.${this.id}`]) {
        // Discovery has no queue group: every instance answers.
        this.subs.push(
          nc.subscribe(subject, {
            callback: (err, msg) => {
              if (!err) this.discovery(verb, msg);
            },
          }),
        );
      }
    }
    for (const ep of this.endpoints) {
      ep.sub = nc.subscribe(ep.subject, {
        ...(ep.queue !== undefined ? { queue: ep.queue } : {}),
        callback: (err, msg) => {
          if (!err) this.handle(ep, msg);
        },
      });
    }
  }

  /** Requests and errors per endpoint, as `$SRV.STATS` reports them. */
  endpointStats(): { name: string; requests: number; errors: number }[] {
    return this.endpoints.map((ep) => ({ name: ep.name, requests: ep.numRequests, errors: ep.numErrors }));
  }

  stop(): void {
    this.nc = undefined;
    for (const sub of this.subs.splice(0)) sub.unsubscribe();
    for (const ep of this.endpoints) {
      ep.sub?.unsubscribe();
      ep.sub = undefined;
    }
  }

  private handle(ep: EndpointState, msg: Msg): void {
    const started = process.hrtime.bigint();
    ep.numRequests++;
    let reply;
    try {
      reply = ep.handler(msg);
    } catch (err) {
      this.failed(ep, msg, err, started);
      return;
    }
    if (!(reply instanceof Promise)) {
      this.answer(ep, msg, reply, started);
      return;
    }
    reply.then(
      (r) => this.answer(ep, msg, r, started),
      (err: unknown) => this.failed(ep, msg, err, started),
    );
  }

  private answer(ep: EndpointState, msg: Msg, reply: Uint8Array | undefined, started: bigint): void {
    try {
      if (reply !== undefined) msg.respond(reply);
    } catch {
      // The connection is closing; nothing to answer.
    }
    ep.processingNs += process.hrtime.bigint() - started;
  }

  private failed(ep: EndpointState, msg: Msg, err: unknown, started: bigint): void {
    ep.numErrors++;
    ep.lastError = messageOf(err);
    // ADR-32: errors travel in the Nats-Service-Error headers; the body stays empty.
    try {
      msg.respond(new Uint8Array(0), { headers: serviceErrorHeaders(ep.lastError, err instanceof ServiceError ? err.code : 500) });
    } catch {
      // The requester is gone; nothing to answer.
    }
    ep.processingNs += process.hrtime.bigint() - started;
  }

  private discovery(verb: (typeof VERBS)[number], msg: Msg): void {
    const identity = {
      name: this.config.name,
      id: this.id,
      version: this.config.version,
      metadata: this.config.metadata ?? {},
    };
    let body: object;
    switch (verb) {
      case 'PING':
        body = { type: 'io.nats.micro.v1.ping_response', ...identity };
        break;
      case 'INFO':
        body = {
          type: 'io.nats.micro.v1.info_response',
          ...identity,
          description: this.config.description,
          endpoints: this.endpoints.map((ep) => ({
            name: ep.name,
            subject: ep.subject,
            ...(ep.queue !== undefined ? { queue_group: ep.queue } : {}),
            metadata: ep.metadata ?? {},
          })),
        };
        break;
      case 'STATS':
        body = {
          type: 'io.nats.micro.v1.stats_response',
          ...identity,
          started: this.started,
          endpoints: this.endpoints.map((ep) => ({
            name: ep.name,
            subject: ep.subject,
            ...(ep.queue !== undefined ? { queue_group: ep.queue } : {}),
            num_requests: ep.numRequests,
            num_errors: ep.numErrors,
            last_error: ep.lastError,
            processing_time: Number(ep.processingNs),
            average_processing_time: ep.numRequests === 0 ? 0 : Number(ep.processingNs / BigInt(ep.numRequests)),
          })),
        };
        break;
    }
    msg.respond(JSON.stringify(body));
  }
}

function serviceErrorHeaders(message: string, code: number) {
  const h = natsHeaders();
  h.set('Nats-Service-Error', message);
  h.set('Nats-Service-Error-Code', String(code));
  return h;
}

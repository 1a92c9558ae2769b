import { createHash } from 'node:crypto';
import type { Msg } from '@nats-io/transport-node';
import { ServiceError } from '../bus/micro-service.js';
import { messageOf } from '../errors.js';
import { encodeEnvelope, makeEnvelope } from '../protocol/envelope.js';
import { SUBJECTS } from '../protocol/topics.js';
import { RolloutRefusal, type Rollout } from './rollout.js';

/** Operator requests are small. */
const MAX_REQUEST_BYTES = 16 * 1024;
/** The longest reason kept. */
export const MAX_REASON = 500;

/** An operator's request, as sent: an envelope whose payload is this, or this bare. */
export interface OperatorRequest {
  /** rollback: the entry (`12`, `#12`) or revision (7+ hex digits) to put back. */
  revision?: string;
  /** rollback: end the rollback in force instead. */
  release?: boolean;
  /** In the history and the log. */
  reason?: string;
}

/** The reply: what was done, by which sentinel. */
export interface OperatorReply {
  schemaVersion: 1;
  ok: true;
  revision: string;
  replaces?: string;
  message: string;
  by: string;
}

/**
 * The handlers of the operator subjects (rollback, promote, abort). Every
 * central sentinel subscribes them without a queue group, so that each acts
 * on each request (replicas must agree on what is in force), and the one
 * that answers first answers the operator. Refusals are ADR-32 errors: 400 a
 * malformed request, 404 an unknown revision, 409 a request that does not fit
 * what is in force, 503 no history.
 */
export function operatorHandlers(rollout: Rollout, identity: { component: string; instance: string }) {
  const by = `${identity.component}/${identity.instance}`;
  const answer = async (msg: Msg, subject: string, work: (request: OperatorRequest, id: string) => Promise<{ revision: string; replaces?: string; message: string }>) => {
    const { request, id, correlationId } = readRequest(msg.data);
    try {
      const done = await work(request, id);
      const reply: OperatorReply = { schemaVersion: 1, ok: true, ...done, by };
      return encodeEnvelope(makeEnvelope(subject, identity.component, reply, { correlationId }));
    } catch (err) {
      if (err instanceof RolloutRefusal) throw new ServiceError(err.code, err.message);
      throw new ServiceError(500, messageOf(err));
    }
  };
  return {
    rollback: (msg: Msg) =>
      answer(msg, SUBJECTS.policyRollback, (request, id) => {
        if (request.release === true) return rollout.releaseRollback(request.reason, id);
        if (typeof request.revision !== 'string' || request.revision.trim() === '') {
          throw new RolloutRefusal(400, 'a rollback request names a revision ({"revision": "<entry or revision>"}), or is {"release": true}');
        }
        return rollout.rollback(request.revision, request.reason, id);
      }),
    promote: (msg: Msg) => answer(msg, SUBJECTS.policyPromote, (request) => rollout.promote(request.reason)),
    abort: (msg: Msg) => answer(msg, SUBJECTS.policyAbort, (request) => rollout.abort(request.reason)),
  };
}

/** The request's fields, and what identifies it among replicas (the envelope's id, else its bytes' digest). */
function readRequest(data: Uint8Array): { request: OperatorRequest; id: string; correlationId?: string } {
  if (data.byteLength > MAX_REQUEST_BYTES) throw new ServiceError(400, `an operator request is at most ${MAX_REQUEST_BYTES} bytes`);
  let body: unknown = {};
  if (data.byteLength > 0) {
    try {
      body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
    } catch {
      throw new ServiceError(400, 'an operator request is a JSON object (a Nachos envelope, or its payload alone)');
    }
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ServiceError(400, 'an operator request is a JSON object');
  const envelope = body as { id?: unknown; correlationId?: unknown; payload?: unknown };
  const isEnvelope = typeof envelope.id === 'string' && typeof envelope.payload === 'object' && envelope.payload !== null;
  const fields = (isEnvelope ? envelope.payload : body) as Record<string, unknown>;
  const request: OperatorRequest = {};
  if (fields.revision !== undefined) {
    if (typeof fields.revision !== 'string') throw new ServiceError(400, '"revision" is a string');
    request.revision = fields.revision;
  }
  if (fields.release !== undefined) request.release = fields.release === true;
  if (fields.reason !== undefined) {
    if (typeof fields.reason !== 'string') throw new ServiceError(400, '"reason" is a string');
    // One line, bounded: it goes into the log and the history.
    request.reason = fields.reason.replace(/\s+/g, ' ').trim().slice(0, MAX_REASON) || undefined;
  }
  const id = isEnvelope ? (envelope.id as string).slice(0, 128) : createHash('sha256').update(data).digest('hex').slice(0, 32);
  const correlationId = isEnvelope ? (typeof envelope.correlationId === 'string' ? envelope.correlationId : (envelope.id as string)) : undefined;
  return { request, id, ...(correlationId !== undefined ? { correlationId } : {}) };
}

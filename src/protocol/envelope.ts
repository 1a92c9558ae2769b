import { randomUUID } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { envelopeType } from './topics.js';

/**
 * The Nachos bus envelope. Every message this project sends is one, and every
 * message it reads is checked against it before anything else looks inside.
 */
export const EnvelopeSchema = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 256 }),
    timestamp: Type.String({ minLength: 1, maxLength: 64 }),
    source: Type.String({ minLength: 1, maxLength: 256 }),
    type: Type.String({ minLength: 1, maxLength: 256 }),
    correlationId: Type.Optional(Type.String({ maxLength: 256 })),
    payload: Type.Unknown(),
  },
  // Other Nachos versions may add fields; read what we know, keep the rest out of the way.
  { additionalProperties: true },
);

export interface Envelope<P = unknown> {
  id: string;
  timestamp: string;
  source: string;
  type: string;
  correlationId?: string;
  payload: P;
}

const checkEnvelope = TypeCompiler.Compile(EnvelopeSchema);

/** Wraps a payload for `subject`. `now` is injectable for tests. */
export function makeEnvelope<P>(
  subject: string,
  source: string,
  payload: P,
  options: { correlationId?: string; now?: number } = {},
): Envelope<P> {
  const env: Envelope<P> = {
    id: randomUUID(),
    timestamp: new Date(options.now ?? Date.now()).toISOString(),
    source,
    type: envelopeType(subject),
    payload,
  };
  if (options.correlationId !== undefined) env.correlationId = options.correlationId;
  return env;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function encodeEnvelope(env: Envelope): Uint8Array {
  return encoder.encode(JSON.stringify(env));
}

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: DecodeFailure; detail: string };
export type DecodeFailure = 'oversized' | 'encoding' | 'json' | 'envelope' | 'payload';

/** Whether an already-parsed value has the envelope's shape. */
export function isEnvelope(value: unknown): value is Envelope {
  return checkEnvelope.Check(value);
}

/**
 * Decodes an envelope from the wire without trusting it: the size is checked
 * before parsing, invalid UTF-8 and JSON are failures, not exceptions, and the
 * payload is checked against `payloadSchema` when one is given. Never throws.
 */
export function decodeEnvelope<P = unknown>(
  data: Uint8Array,
  maxBytes: number,
  payloadCheck?: { Check(value: unknown): value is P },
): Decoded<Envelope<P>> {
  if (data.byteLength > maxBytes) {
    return { ok: false, reason: 'oversized', detail: `${data.byteLength} bytes, limit ${maxBytes}` };
  }
  let text: string;
  try {
    text = decoder.decode(data);
  } catch {
    return { ok: false, reason: 'encoding', detail: 'not valid UTF-8' };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: 'json', detail: (err as Error).message };
  }
  if (!checkEnvelope.Check(value)) {
    const first = checkEnvelope.Errors(value).First();
    return { ok: false, reason: 'envelope', detail: first ? `${first.path || '/'}: ${first.message}` : 'not an envelope' };
  }
  if (payloadCheck && !payloadCheck.Check(value.payload)) {
    return { ok: false, reason: 'payload', detail: 'payload does not match its schema' };
  }
  return { ok: true, value: value as Envelope<P> };
}

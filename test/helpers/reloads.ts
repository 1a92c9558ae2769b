import { createHash } from 'node:crypto';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import { reloadBody, reloadHead, type PolicyReloadPayload } from '../../src/policy/announcements.js';
import type { ReloadSigner } from '../../src/policy/signature.js';
import { buildSnapshot } from '../../src/policy/snapshot.js';
import { makeEnvelope, type Envelope } from '../../src/protocol/envelope.js';
import { SUBJECTS } from '../../src/protocol/topics.js';

export type ReloadMessage = Envelope<PolicyReloadPayload>;

export interface MakeReload {
  /** File name -> text. */
  files: Record<string, string>;
  signer?: ReloadSigner;
  /** Wall-clock ms; default now. */
  issuedAt?: number;
  validForMs?: number;
  deployment?: string;
  sequence?: number;
  /** Only for these (a canary's set: schemaVersion 4, signed as v4). */
  audience?: string[];
  /** Announce the body apart, served on this transfer subject in parts of `partBytes`. */
  transfer?: { subject: string; partBytes: number };
}

/**
 * A reload built by the same code the central sentinel announces with (the
 * snapshot, the head, the body, the envelope, the signature), for tests that
 * play the central sentinel, or an impostor holding a captured message. With
 * `transfer`, the body is returned apart, for the test to serve.
 */
export function makeReload(options: MakeReload): { message: ReloadMessage; body?: Uint8Array; files: Record<string, string> } {
  const sources = Object.entries(options.files).map(([path, text]) => ({ path, kind: 'policy' as const, content: Buffer.from(text) }));
  const built = buildSnapshot(sources, [], { allowEmpty: true, invalidFiles: 'reject-set', strictKeys: false });
  if (!built.ok) throw new Error(`the test's set is invalid: ${JSON.stringify(built.rejection.problems.slice(0, 2))}`);
  const announced = { snapshot: built.snapshot, previous: undefined, sequence: options.sequence ?? 1 };
  const issuedAt = options.issuedAt ?? Date.now();
  const head = reloadHead(announced, options.audience ? 'canary' : 'change', {
    issuedAt,
    validForMs: options.validForMs ?? 24 * 3_600_000,
    deployment: options.deployment ?? '',
    audience: options.audience,
  });
  const body = reloadBody(announced);
  let payload: PolicyReloadPayload = { ...head, ...body };
  let bytes: Uint8Array | undefined;
  if (options.transfer) {
    bytes = new TextEncoder().encode(JSON.stringify(body));
    const { subject, partBytes } = options.transfer;
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    payload = { ...head, transfer: { subject, sha256, bytes: bytes.byteLength, parts: Math.ceil(bytes.byteLength / partBytes), partBytes } };
  }
  const message = makeEnvelope(SUBJECTS.policyReload, 'sentinel', payload, { now: issuedAt });
  // Through JSON, as it travels.
  const signed = JSON.parse(JSON.stringify(options.signer ? options.signer.sign(message) : message)) as ReloadMessage;
  const files = Object.fromEntries(built.snapshot.files.map((f) => [f.path, f.sha256]));
  return bytes ? { message: signed, body: bytes, files } : { message: signed, files };
}

/**
 * Serves a body's parts on `subject`, as a sentinel's transfer endpoint does, with a hook that
 * decides each answer: the part, an error (ADR-32 headers), silence, or a delay.
 */
export function serveParts(
  nc: NatsConnection,
  subject: string,
  body: Uint8Array,
  partBytes: number,
  decide: (part: number, asked: number) => 'answer' | 'error' | 'silence' | { delayMs: number } = () => 'answer',
): { asked: () => number; stop: () => void } {
  let asked = 0;
  const sub = nc.subscribe(subject, {
    callback: (_err, msg) => {
      asked++;
      const { part } = JSON.parse(new TextDecoder().decode(msg.data)) as { part: number };
      const chunk = body.subarray(part * partBytes, part * partBytes + partBytes);
      const verdict = decide(part, asked);
      if (verdict === 'silence') return;
      if (verdict === 'error') {
        msg.respond(new Uint8Array(0), { headers: errorHeaders() });
        return;
      }
      if (verdict === 'answer') msg.respond(chunk);
      else setTimeout(() => msg.respond(chunk), verdict.delayMs);
    },
  });
  return { asked: () => asked, stop: () => sub.unsubscribe() };
}

function errorHeaders() {
  // A 503, as a sentinel past its limits answers.
  const h = headers();
  h.set('Nats-Service-Error', 'busy; ask again in a second');
  h.set('Nats-Service-Error-Code', '503');
  return h;
}

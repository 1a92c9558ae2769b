import { createHash } from 'node:crypto';
import { checkConsistency, type PolicyReloadPayload, type ReloadBody } from '../policy/announcements.js';

/** Sends one request and resolves with the reply's bytes; rejects on an error reply or a timeout. */
export type Requester = (subject: string, data: Uint8Array) => Promise<Uint8Array>;

/** Bodies larger than this are not fetched: no policy set comes near it. */
export const MAX_BODY_BYTES = 256 * 1024 * 1024;

/**
 * The whole reload, when it came as a head with a `transfer` (its body was
 * too large for one message): asks the announcing sentinel for each part, and
 * checks the body against the SHA-256 in the head, which the signature
 * covers, and against its revision. A payload that carries its body is
 * returned as it is.
 */
export async function fetchReloadBody(payload: PolicyReloadPayload, request: Requester): Promise<PolicyReloadPayload & ReloadBody> {
  const { transfer, ...head } = payload;
  if (!transfer) return payload as PolicyReloadPayload & ReloadBody;
  const { subject, sha256, bytes, parts, partBytes } = transfer;
  if (!Number.isSafeInteger(bytes) || bytes < 0 || bytes > MAX_BODY_BYTES || parts !== Math.ceil(bytes / partBytes)) {
    throw new Error('the transfer is malformed');
  }
  const body = new Uint8Array(bytes);
  for (let part = 0; part < parts; part++) {
    const chunk = await request(subject, new TextEncoder().encode(JSON.stringify({ sha256, part })));
    const expected = Math.min(partBytes, bytes - part * partBytes);
    if (chunk.byteLength !== expected) throw new Error(`part ${part} has ${chunk.byteLength} bytes, expected ${expected}`);
    body.set(chunk, part * partBytes);
  }
  if (createHash('sha256').update(body).digest('hex') !== sha256) throw new Error('the body does not match the SHA-256 of its head');
  const whole = { ...head, ...(JSON.parse(new TextDecoder().decode(body)) as ReloadBody) } as PolicyReloadPayload & ReloadBody;
  const verdict = checkConsistency(whole);
  if (!verdict.ok) throw new Error(`the body does not match its head: ${verdict.reason}`);
  return whole;
}

import { createHash } from 'node:crypto';
import { checkConsistency, type PolicyReloadPayload, type ReloadBody } from '../policy/announcements.js';

/** Sends one request and resolves with the reply's bytes; rejects on an error reply or a timeout. */
export type Requester = (subject: string, data: Uint8Array) => Promise<Uint8Array>;

/** Bodies larger than this are not fetched unless the caller allows more: no policy set comes near it. */
export const MAX_BODY_BYTES = 64 * 1024 * 1024;

export interface FetchOptions {
  /** Stops between parts (a newer set superseded this one). */
  signal?: AbortSignal;
  /** The largest body fetched (default MAX_BODY_BYTES). */
  maxBytes?: number;
}

/**
 * The whole reload, when it came as a head with a `transfer` (its body was
 * too large for one message): asks the announcing sentinel for each part, one
 * at a time, and checks the body against the SHA-256 in the head, which the
 * signature covers, and against its revision. Memory follows the parts that
 * arrived, not the size a head announces. A payload that carries its body is
 * returned as it is.
 */
export async function fetchReloadBody(payload: PolicyReloadPayload, request: Requester, options: FetchOptions = {}): Promise<PolicyReloadPayload & ReloadBody> {
  const { transfer, ...head } = payload;
  if (!transfer) return payload as PolicyReloadPayload & ReloadBody;
  const { subject, sha256, bytes, parts, partBytes } = transfer;
  const maxBytes = options.maxBytes ?? MAX_BODY_BYTES;
  if (!Number.isSafeInteger(bytes) || bytes < 0 || !Number.isSafeInteger(partBytes) || partBytes < 1 || parts !== Math.ceil(bytes / partBytes)) {
    throw new Error('the transfer is malformed');
  }
  if (bytes > maxBytes) throw new Error(`the body would be ${bytes} bytes, more than the ${maxBytes} allowed`);
  const chunks: Uint8Array[] = [];
  const hash = createHash('sha256');
  for (let part = 0; part < parts; part++) {
    options.signal?.throwIfAborted();
    const chunk = await request(subject, new TextEncoder().encode(JSON.stringify({ sha256, part })));
    const expected = Math.min(partBytes, bytes - part * partBytes);
    if (chunk.byteLength !== expected) throw new Error(`part ${part} has ${chunk.byteLength} bytes, expected ${expected}`);
    hash.update(chunk);
    chunks.push(chunk);
  }
  options.signal?.throwIfAborted();
  if (hash.digest('hex') !== sha256) throw new Error('the body does not match the SHA-256 of its head');
  const whole = { ...head, ...(JSON.parse(Buffer.concat(chunks).toString('utf8')) as ReloadBody) } as PolicyReloadPayload & ReloadBody;
  const verdict = checkConsistency(whole);
  if (!verdict.ok) throw new Error(`the body does not match its head: ${verdict.reason}`);
  return whole;
}

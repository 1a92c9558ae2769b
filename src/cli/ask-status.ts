import { GRACE_REASON } from '../health/grace-reason.js';
import type { HealthStatusPayload } from '../health/status-payload.js';
import { redactUrl } from '../bus/url-credentials.js';
import { SUBJECTS, envelopeType } from '../protocol/topics.js';

/** Wait before asking again a sentinel that sheds requests (ADR-32 503). */
const BUSY_RETRY = 200; // ms
/** Wait before asking again a sentinel still in its first interval (the probe only). */
const GRACE_RETRY = 100; // ms

/** What asking needs of a connection: the NATS client's, or the probe's own protocol path (probe/wire.ts). */
export interface StatusRequester {
  request(subject: string, data: string, options: { timeout: number }): Promise<{ headers?: { get(key: string): string } | undefined; json<T>(): T }>;
}

/** A failure to get the health view, worded for the person who asked. */
export class StatusRequestError extends Error {}

/** `nats://user:secret@host` -> `nats://host`, for messages. */
export function shownServers(servers: readonly string[]): string {
  return servers.map(redactUrl).join(',');
}

/**
 * Asks `nachos.system.health.status` (for one component, or all) and checks
 * that the answer is a status reply. Shared by the `--once` probe and the
 * `status` command; the connection is the caller's.
 */
export async function askStatus(
  nc: StatusRequester,
  options: { component?: string; timeoutMs: number; servers: readonly string[]; id: string; waitOutGrace?: boolean },
): Promise<HealthStatusPayload> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const view = await askOnce(nc, options, deadline);
    // Right after the sentinel started, its view is unknown until its roster is heard: the probe waits
    // for that (within its timeout) rather than answer unknown.
    if (!options.waitOutGrace || view.status !== 'unknown' || view.reason !== GRACE_REASON || Date.now() + GRACE_RETRY * 2 > deadline) return view;
    await new Promise((resolve) => setTimeout(resolve, GRACE_RETRY));
  }
}

async function askOnce(
  nc: StatusRequester,
  options: { component?: string; servers: readonly string[]; id: string },
  deadline: number,
): Promise<HealthStatusPayload> {
  const request = {
    id: options.id,
    timestamp: new Date().toISOString(),
    source: 'nachos-sentinel-cli',
    type: envelopeType(SUBJECTS.healthStatus),
    payload: options.component ? { component: options.component } : {},
  };
  let reply;
  for (;;) {
    try {
      reply = await nc.request(SUBJECTS.healthStatus, JSON.stringify(request), { timeout: Math.max(1, deadline - Date.now()) });
    } catch (err) {
      const text = (err as Error).message;
      throw new StatusRequestError(
        /no responders/i.test(text)
          ? `no sentinel answered on ${SUBJECTS.healthStatus} at ${shownServers(options.servers)} (is the sentinel running?)`
          : `no answer from a sentinel on ${SUBJECTS.healthStatus}: ${text}`,
      );
    }
    // An ADR-32 error reply: a 503 says the sentinel sheds a flood of requests, so ask again shortly.
    const code = reply.headers?.get('Nats-Service-Error-Code');
    if (!code) break;
    const error = reply.headers?.get('Nats-Service-Error') ?? '';
    if (code !== '503' || Date.now() + BUSY_RETRY > deadline) throw new StatusRequestError(`the sentinel answered with an error (${code}): ${error}`);
    await new Promise((resolve) => setTimeout(resolve, BUSY_RETRY));
  }
  try {
    const view = reply.json<{ payload: HealthStatusPayload }>().payload;
    if (typeof view?.status !== 'string' || !Array.isArray(view.components)) throw new Error('not a status reply');
    return view;
  } catch (err) {
    throw new StatusRequestError(`the sentinel's answer could not be read: ${(err as Error).message}`);
  }
}

/** The status that was asked about: the component's with `component`, else the overall one. */
export function probedStatus(view: HealthStatusPayload, component?: string): string {
  return component ? (view.components.find((c) => c.name === component)?.status ?? 'missing') : view.status;
}

/** Why the probed status is what it is: the component's own reason with `--component`, else the system's. */
export function probedReason(view: HealthStatusPayload, component?: string): string {
  if (!component) return view.reason;
  const entry = view.components.find((c) => c.name === component);
  return entry ? entry.reason || `${component} is ${entry.status}` : `no heartbeat of ${component} has been heard`;
}

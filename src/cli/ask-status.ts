import type { NatsConnection } from '@nats-io/transport-node';
import type { HealthStatusPayload } from '../bus/health-monitor.js';
import { redactUrl } from '../bus/url-credentials.js';
import { SUBJECTS, envelopeType } from '../topics.js';

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
  nc: NatsConnection,
  options: { component?: string; timeoutMs: number; servers: readonly string[]; id: string },
): Promise<HealthStatusPayload> {
  const request = {
    id: options.id,
    timestamp: new Date().toISOString(),
    source: 'nachos-sentinel-cli',
    type: envelopeType(SUBJECTS.healthStatus),
    payload: options.component ? { component: options.component } : {},
  };
  let reply;
  try {
    reply = await nc.request(SUBJECTS.healthStatus, JSON.stringify(request), { timeout: options.timeoutMs });
  } catch (err) {
    const text = (err as Error).message;
    throw new StatusRequestError(
      /no responders/i.test(text)
        ? `no sentinel answered on ${SUBJECTS.healthStatus} at ${shownServers(options.servers)} (is the sentinel running?)`
        : `no answer from a sentinel on ${SUBJECTS.healthStatus}: ${text}`,
    );
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

import type { NatsConnection } from '@nats-io/transport-node';
import { authOptions } from '../bus/auth.js';
import type { SentinelConfig } from '../config/settings.js';
import { shownServers } from './ask-status.js';

/** How long a command waits for the bus, and for an answer. */
export const COMMAND_TIMEOUT = 2000; // ms

/** A failure to reach the bus, worded for the person who ran the command. */
export class BusUnreachable extends Error {}

/**
 * One connection for a command that asks and exits (status, verify --current,
 * rollback, rollout, history from JetStream): the configured servers and
 * credentials, no reconnecting, a short timeout.
 */
export async function connectOnce(config: SentinelConfig, name: string): Promise<NatsConnection> {
  const { connect, credsAuthenticator, nkeyAuthenticator } = await import('@nats-io/transport-node');
  try {
    return await connect({ ...authOptions(config.servers, config, { nkeyAuthenticator, credsAuthenticator }), name, reconnect: false, timeout: COMMAND_TIMEOUT });
  } catch (err) {
    throw new BusUnreachable(`bus unreachable at ${shownServers(config.servers)}: ${(err as Error).message}`);
  }
}

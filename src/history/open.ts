import type { NatsConnection } from '@nats-io/transport-node';
import type { SentinelConfig } from '../config/settings.js';
import { LocalHistoryStore } from './local-store.js';
import type { HistoryStore } from './store.js';

/** The bus as the JetStream store needs it: a connection, once there is one. */
export interface HistoryBus {
  connection: () => Promise<NatsConnection>;
  maxPayload: () => number;
}

/**
 * The history the configuration names: the local state directory (made and
 * locked now: a problem with it stops the start, naming the directory), a
 * JetStream stream (reached once the bus is), or none.
 */
export async function openHistory(
  config: Pick<SentinelConfig, 'historyStore' | 'stateDir' | 'historyKeep' | 'historyStream' | 'historyReplicas' | 'deployment'>,
  bus: HistoryBus,
  readOnly = false,
): Promise<HistoryStore | undefined> {
  switch (config.historyStore) {
    case 'off':
      return undefined;
    case 'local':
      return LocalHistoryStore.open({ dir: config.stateDir, keep: config.historyKeep, readOnly });
    case 'jetstream': {
      // Loaded only here: a daemon that keeps its history on disk never loads the JetStream client.
      const { JetStreamHistoryStore } = await import('./jetstream-store.js');
      return new JetStreamHistoryStore({
        connection: bus.connection,
        maxPayload: bus.maxPayload,
        stream: config.historyStream,
        deployment: config.deployment,
        replicas: config.historyReplicas,
        keep: config.historyKeep,
        readOnly,
      });
    }
  }
}

import type { Logger } from 'pino';
import type { SentinelConfig } from '../config/settings.js';
import type { SigningKey } from '../trust/ed25519.js';
import { loadSeedFile } from '../trust/seed-file.js';

/** The key this process signs its heartbeats with (`--health-seed`), read once at start; undefined when unsigned. */
export function heartbeatKey(config: Pick<SentinelConfig, 'healthSeed'>, log: Logger): SigningKey | undefined {
  if (config.healthSeed === undefined) return undefined;
  const { key, warning } = loadSeedFile(config.healthSeed, 'heartbeat seed');
  if (warning) log.warn(warning);
  log.info({ publicKey: key.publicKey }, 'heartbeats are signed');
  return key;
}

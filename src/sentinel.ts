import type { Logger } from 'pino';
import { BusConnection } from './bus/connection.js';
import { PolicyAnnouncer } from './bus/policy-announcer.js';
import { systemClock, type Clock } from './clock.js';
import type { SentinelConfig } from './config/settings.js';
import { PolicyReloader } from './reload/reloader.js';
import { DEFAULT_DIR_CHECK_INTERVAL } from './watch/policy-watcher.js';

export interface SentinelParts {
  log: Logger;
  instance: string;
  clock?: Clock;
  /** How often watched directories are checked for replacement (tests shorten it). */
  dirCheckIntervalMs?: number;
}

/**
 * The daemon, assembled: the reloader, the bus connection and what puts the
 * reloader's decisions on the bus. The CLI builds one and handles signals;
 * tests build one in-process.
 */
export class Sentinel {
  readonly reloader: PolicyReloader;
  readonly bus: BusConnection;
  readonly announcer: PolicyAnnouncer;
  private closing: Promise<void> | undefined;

  constructor(
    readonly config: SentinelConfig,
    private readonly parts: SentinelParts,
  ) {
    const { log } = parts;
    this.reloader = new PolicyReloader({
      dir: config.policies,
      extraFiles: config.watch,
      maxFileBytes: config.maxFileBytes,
      allowEmpty: config.allowEmpty,
      quietWindowMs: config.quietWindowMs,
      maxWaitMs: config.maxWaitMs,
      rescanIntervalMs: config.rescanIntervalMs,
      dirCheckIntervalMs: parts.dirCheckIntervalMs ?? DEFAULT_DIR_CHECK_INTERVAL,
      clock: parts.clock ?? systemClock,
      log,
    });
    this.bus = new BusConnection({ servers: config.servers, name: `${config.component}/${parts.instance}`, log });
    this.announcer = new PolicyAnnouncer({ bus: this.bus, reloader: this.reloader, source: config.component, log });
  }

  /** Reads the policy set and starts watching; connects to the bus in the background. */
  async start(): Promise<void> {
    this.announcer.start();
    await this.reloader.start();
    void this.bus.start();
  }

  /** Stops watching, then drains the bus connection within `timeoutMs`. Idempotent. */
  close(timeoutMs = 1500): Promise<void> {
    this.closing ??= (async () => {
      this.announcer.stop();
      await this.reloader.close();
      await this.bus.close(timeoutMs);
    })();
    return this.closing;
  }
}

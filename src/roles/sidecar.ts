import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { BusConnection } from '../bus/connection.js';
import { MicroService } from '../bus/micro-service.js';
import { systemClock, type Clock } from '../clock.js';
import type { SentinelConfig } from '../config/settings.js';
import { ConfigMapDir } from '../deliver/configmap-dir.js';
import { PolicyReceiver } from '../deliver/policy-receiver.js';
import { ReloadNotifier } from '../deliver/reload-notifier.js';
import { CheckRunner, configuredCheck } from '../health/checks.js';
import { HeartbeatPublisher, type LiveCheck } from '../health/heartbeat.js';
import { HttpServer } from '../http/http-server.js';
import { sidecarRoutes } from '../http/sidecar-routes.js';
import { leave } from './leave.js';

/** The name standard NATS tooling lists sidecars under (`nats micro ls`); no endpoints, only the identity. */
export const SIDECAR_SERVICE_NAME = 'nachos-sentinel-sidecar';

export interface SidecarParts {
  log: Logger;
  instance: string;
  version: string;
  clock?: Clock;
}

/**
 * The sidecar's composition root: one beside each container. It reports the
 * neighbour's health on the bus (its checks, and the neighbour's own verdict
 * when it answers with a Nachos HealthCheck) and, with a delivery directory,
 * writes every verified policy set there for the neighbour to read, then tells
 * it (a POST, a command). Nothing else: it does not aggregate, answer status or
 * policy requests, watch a policy source, or announce policies.
 *
 *   health:   checks of the neighbour --> heartbeat (as the neighbour's component) --> bus
 *   policies: bus --reload, policy.current--> receiver (verify) --> ConfigMap directory
 *                                                    \--> notifier (POST, command), heartbeat (revision on disk)
 */
export class Sidecar {
  readonly bus: BusConnection;
  readonly heartbeat: HeartbeatPublisher;
  readonly receiver: PolicyReceiver | undefined;
  readonly notifier: ReloadNotifier;
  readonly service: MicroService;
  readonly http: HttpServer | undefined;
  httpAddress: AddressInfo | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    readonly config: SentinelConfig,
    parts: SidecarParts,
  ) {
    const { log, instance, version } = parts;
    const clock = parts.clock ?? systemClock;

    // --- the parts ---------------------------------------------------------
    this.bus = new BusConnection({ servers: config.servers, name: `${config.component}-sidecar/${instance}`, log, auth: config });
    this.notifier = new ReloadNotifier({
      url: config.reloadUrl,
      command: config.reloadCommand,
      timeoutMs: config.reloadTimeoutMs,
      log,
      onChange: () => this.heartbeat.publishIfChanged(),
    });
    if (config.deliverTo !== undefined) {
      this.receiver = new PolicyReceiver({
        bus: this.bus,
        dir: new ConfigMapDir(config.deliverTo),
        publicKey: config.publicKey,
        source: config.component,
        log,
        onChange: () => this.heartbeat.publishIfChanged(),
      });
    }
    const runner = new CheckRunner([...config.checks, ...config.sidecarChecks].map(configuredCheck), () => this.heartbeat.publishIfChanged());
    this.heartbeat = new HeartbeatPublisher({
      bus: this.bus,
      clock,
      component: config.component,
      instance,
      version,
      intervalMs: config.healthIntervalMs,
      runner,
      live: this.ownChecks(),
      // What is on disk for the neighbour: the central sentinel's convergence view shows it.
      policyRevision: () => this.receiver?.delivered?.revision ?? null,
      log,
    });
    this.service = new MicroService({
      name: SIDECAR_SERVICE_NAME,
      version,
      description: `Health and policy delivery for ${config.component}`,
      metadata: { component: config.component, instance },
    });
    if (config.http) {
      this.http = new HttpServer(config.http, log, config.httpAllowedHosts);
      const receiver = this.receiver;
      sidecarRoutes(this.http, {
        clock,
        heartbeat: this.heartbeat,
        bus: this.bus,
        ...(receiver && config.deliverTo !== undefined
          ? {
              delivery: () => ({
                dir: config.deliverTo as string,
                revision: receiver.delivered?.revision ?? null,
                failure: receiver.failure ?? null,
                refused: receiver.refused as Record<string, number>,
              }),
            }
          : {}),
      });
    }

    // --- the wires -----------------------------------------------------------
    // A set on disk: tell the neighbour, and say the new revision in our heartbeat at once.
    this.receiver?.onDelivered((delivered) => {
      this.notifier.notify(delivered.revision);
      this.heartbeat.publishIfChanged();
    });
    // The connection: our identity, our heartbeat, and the set in force (the bus kept nothing meanwhile).
    const connected = () => {
      const nc = this.bus.nc;
      if (nc) this.service.start(nc);
      this.heartbeat.onReconnect();
      void this.receiver?.connected();
    };
    this.bus.on('connect', connected);
    this.bus.on('reconnect', connected);
  }

  /** The sidecar's own checks, evaluated at each heartbeat: the delivery, and telling the neighbour. */
  private ownChecks(): LiveCheck[] {
    const checks: LiveCheck[] = [];
    if (this.config.deliverTo !== undefined) {
      checks.push({
        name: 'policy_delivery',
        required: false,
        test: () => {
          const failure = this.receiver?.failure;
          if (failure) return { ok: false, message: failure };
          return this.receiver?.delivered ? { ok: true } : { ok: false, message: `no verified policy set delivered into ${this.config.deliverTo} yet` };
        },
      });
    }
    if (this.notifier.enabled) {
      checks.push({
        name: 'policy_reload',
        required: false,
        test: () => (this.notifier.failure ? { ok: false, message: this.notifier.failure } : { ok: true }),
      });
    }
    return checks;
  }

  /** Reads what was delivered before, starts the heartbeat and the HTTP listener; connects in the background. */
  async start(): Promise<void> {
    await this.receiver?.start();
    this.heartbeat.start();
    this.httpAddress = await this.http?.start();
    void this.bus.start();
  }

  /** Leaves cleanly: a last heartbeat (`stopping`), then everything stops within `timeoutMs`. Idempotent. */
  close(timeoutMs = 1200): Promise<void> {
    this.closing ??= leave(timeoutMs, this.bus, this.heartbeat, async () => {
      this.receiver?.close();
      this.notifier.close();
      this.service.stop();
      await this.http?.close();
    });
    return this.closing;
  }
}

import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { BusConnection } from '../bus/connection.js';
import { MicroService } from '../bus/micro-service.js';
import { systemClock, type Clock } from '../clock.js';
import type { SentinelConfig } from '../config/settings.js';
import { ConfigMapDir, ForeignFilesError } from '../deliver/configmap-dir.js';
import { ConfigError, messageOf } from '../errors.js';
import { PolicyReceiver } from '../deliver/policy-receiver.js';
import { ReloadNotifier } from '../deliver/reload-notifier.js';
import { nameChecks } from '../health/check-specs.js';
import { CheckRunner, configuredCheck } from '../health/checks.js';
import { HeartbeatPublisher, type LiveCheck } from '../health/heartbeat.js';
import { HttpServer } from '../http/http-server.js';
import { consumerReads } from '../policy/consumer.js';
import { sidecarRoutes } from '../http/sidecar-routes.js';
import { heartbeatKey } from './heartbeat-key.js';
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
      headers: config.reloadHeaders,
      command: config.reloadCommand,
      timeoutMs: config.reloadTimeoutMs,
      log,
      onChange: () => this.heartbeat.publishIfChanged(),
    });
    if (config.deliverTo !== undefined) {
      this.receiver = new PolicyReceiver({
        bus: this.bus,
        dir: new ConfigMapDir(config.deliverTo, { takeOver: config.takeOver }),
        publicKeys: config.publicKeys,
        deployment: config.deployment,
        maxClockSkewMs: config.maxClockSkewMs,
        source: config.component,
        instance,
        log,
        // With the history in a JetStream stream, a sidecar that finds no central sentinel delivers the newest statement kept there.
        ...(config.historyStore === 'jetstream'
          ? { kept: async () => (await import('../history/jetstream-store.js')).readCurrentStatement(await this.bus.whenConnected(), config.historyStream, config.deployment) }
          : {}),
        onChange: () => this.heartbeat.publishIfChanged(),
      });
    }
    // Unnamed --check URLs are named after the component (gateway, gateway-2, ...), around the names taken.
    const runner = new CheckRunner(nameChecks([...config.checks, ...config.sidecarChecks], config.component).map(configuredCheck), () => this.heartbeat.publishIfChanged());
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
      // Delivered, but not read by the neighbour (its consumer): said, so that convergence does not claim it in force.
      policyFacts: () => {
        const delivered = this.receiver?.delivered;
        const problem = this.receiver?.problem;
        const hook = this.notifier.hook;
        return {
          unread: (delivered?.files ?? []).map((f) => f.path).filter((path) => !consumerReads(config.consumer, path)),
          ...(delivered ? { deliveredAt: delivered.deliveredAt } : {}),
          ...(problem ? { failure: problem } : {}),
          ...(hook ? { hook } : {}),
        };
      },
      // The neighbour's health is known from its checks alone: with none (or none answered yet), unknown.
      speaksFor: 'neighbour',
      signingKey: heartbeatKey(config, log),
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
          const receiver = this.receiver;
          const problem = receiver?.failure ?? receiver?.refusal ?? receiver?.staleness();
          if (problem) return { ok: false, message: problem };
          if (!receiver?.delivered) return { ok: false, message: `no verified policy set delivered into ${this.config.deliverTo} yet` };
          if (receiver.foreign.length > 0) {
            return { ok: false, message: `${this.config.deliverTo} also holds files the sidecar did not write, which a reader reads too: ${receiver.foreign.slice(0, 5).join(', ')}` };
          }
          return { ok: true };
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
    try {
      await this.receiver?.start();
    } catch (err) {
      // A directory holding someone else's files, or one we cannot make: said as a setting's problem (exit 2).
      throw new ConfigError(`--deliver-to ${this.config.deliverTo ?? ''}`, err instanceof ForeignFilesError ? err.message.slice(err.dir.length + 1) : messageOf(err));
    }
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

import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { BusConnection } from './bus/connection.js';
import { HealthMonitor } from './bus/health-monitor.js';
import { MicroService } from './bus/micro-service.js';
import { PolicyAnnouncer } from './bus/policy-announcer.js';
import { systemClock, type Clock } from './clock.js';
import type { SentinelConfig } from './config/settings.js';
import { ConfigError, messageOf } from './errors.js';
import { ReloadSigner } from './policy/signature.js';
import { CheckRunner, configuredCheck, eventLoopCheck } from './health/checks.js';
import { HeartbeatPublisher } from './health/heartbeat.js';
import { rosterOf } from './health/heartbeat-payload.js';
import { HttpServer, sendJson } from './http/http-server.js';
import { createMetrics } from './http/metrics.js';
import { StatusFeed } from './http/status-feed.js';
import { CONTENT_SECURITY_POLICY, STATUS_PAGE_HTML, STATUS_PAGE_SCRIPT } from './http/status-page.js';
import { PolicyReloader } from './reload/reloader.js';
import { SENTINEL_QUEUE, SUBJECTS } from './topics.js';
import type { LogStats } from './log.js';
import { packageVersion } from './version.js';
import { DEFAULT_DIR_CHECK_INTERVAL } from './watch/policy-watcher.js';

/** Reads the signing seed file; a ConfigError (exit 2, before connecting) when it is not a seed. */
function loadSigner(file: string): ReloadSigner {
  let seed: string;
  try {
    seed = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`signing seed ${file}`, `cannot be read: ${messageOf(err)}`);
  }
  try {
    return new ReloadSigner(seed);
  } catch (err) {
    throw new ConfigError(`signing seed ${file}`, messageOf(err));
  }
}

/** The name standard NATS tooling lists the sentinel under (`nats micro ls`). */
export const SERVICE_NAME = 'nachos-sentinel';

export interface SentinelParts {
  log: Logger;
  /** What the logger could not write (for /metrics). */
  logStats?: LogStats;
  instance: string;
  clock?: Clock;
  /** How often watched directories are checked for replacement (tests shorten it). */
  dirCheckIntervalMs?: number;
}

/**
 * The daemon, assembled: the policy reloader and its announcer, heartbeats
 * out, the aggregated view of everyone's heartbeats, the micro service
 * endpoints and the HTTP listener, over one bus connection. The CLI builds
 * one and handles signals; tests build one in-process.
 */
export class Sentinel {
  readonly reloader: PolicyReloader;
  readonly bus: BusConnection;
  readonly announcer: PolicyAnnouncer;
  readonly monitor: HealthMonitor;
  readonly heartbeat: HeartbeatPublisher;
  readonly service: MicroService;
  readonly http: HttpServer | undefined;
  readonly feed: StatusFeed | undefined;
  /** The Prometheus registry behind /metrics (with the HTTP listener). */
  readonly metrics: Registry | undefined;
  readonly instance: string;
  /** Signs reloads, with a signing seed configured. */
  readonly signer: ReloadSigner | undefined;
  /** Where the HTTP listener is bound, once started (undefined when off or failed). */
  httpAddress: AddressInfo | undefined;
  private readonly eventLoop = eventLoopCheck();
  private closing: Promise<void> | undefined;

  constructor(
    readonly config: SentinelConfig,
    parts: SentinelParts,
  ) {
    const { log, instance } = parts;
    this.instance = instance;
    const clock = parts.clock ?? systemClock;
    const version = packageVersion();
    this.reloader = new PolicyReloader({
      dir: config.policies,
      extraFiles: config.watch,
      maxFileBytes: config.maxFileBytes,
      allowEmpty: config.allowEmpty,
      strictKeys: config.strictKeys,
      invalidFiles: config.invalidFiles,
      quietWindowMs: config.quietWindowMs,
      maxWaitMs: config.maxWaitMs,
      rescanIntervalMs: config.rescanIntervalMs,
      dirCheckIntervalMs: parts.dirCheckIntervalMs ?? DEFAULT_DIR_CHECK_INTERVAL,
      clock,
      log,
    });
    this.bus = new BusConnection({ servers: config.servers, name: `${config.component}/${instance}`, log, auth: config });
    this.signer = config.signingSeed ? loadSigner(config.signingSeed) : undefined;
    if (this.signer) log.info({ publicKey: this.signer.publicKey }, 'reloads are signed');
    this.announcer = new PolicyAnnouncer({
      bus: this.bus,
      reloader: this.reloader,
      source: config.component,
      instance,
      invalidFiles: config.invalidFiles,
      log,
      signer: this.signer,
      now: () => clock.wallNow(),
    });
    this.monitor = new HealthMonitor({
      bus: this.bus,
      clock,
      component: config.component,
      instance,
      intervalMs: config.healthIntervalMs,
      required: config.required,
      optional: config.optional,
      maxInstances: config.maxInstances,
      maxPerComponent: config.maxInstancesPerComponent,
      maxIntervalMs: config.maxIntervalMs,
      log,
    });
    const runner = new CheckRunner([this.eventLoop, ...config.checks.map(configuredCheck)], () =>
      this.heartbeat.publishIfChanged(),
    );
    this.heartbeat = new HeartbeatPublisher({
      bus: this.bus,
      clock,
      component: config.component,
      instance,
      version,
      intervalMs: config.healthIntervalMs,
      runner,
      live: [
        { name: 'bus', required: true, test: () => (this.bus.connected ? { ok: true } : { ok: false, message: 'not connected to the bus' }) },
        {
          name: 'policy',
          required: true,
          test: () => (this.reloader.inForce ? { ok: true } : { ok: false, message: 'no valid policy snapshot in force yet' }),
        },
        {
          name: 'policy_files',
          required: false,
          test: () => {
            const { lastRejection, inForce } = this.reloader;
            if (lastRejection) return { ok: false, message: `the files on disk were rejected (${lastRejection.problems.length} problem(s))` };
            const skipped = inForce?.skipped ?? [];
            if (skipped.length > 0) {
              return { ok: false, message: `invalid file(s) left out of the set in force (invalid_files = skip-file): ${skipped.map((f) => f.path).join(', ')}` };
            }
            return { ok: true };
          },
        },
        {
          name: 'announce',
          required: false,
          test: () => {
            const failure = this.announcer.publishFailure;
            return failure ? { ok: false, message: `could not publish on ${failure.subject}: ${failure.error}` } : { ok: true };
          },
        },
      ],
      policyRevision: () => this.reloader.inForce?.revision ?? null,
      roster: rosterOf(this.monitor.required, config.optional),
      log,
    });
    this.service = new MicroService({
      name: SERVICE_NAME,
      version,
      description: 'Policy reloads and health for the Nachos bus',
      metadata: { component: config.component, instance },
    });
    this.service.addEndpoint({
      name: 'health-status',
      subject: SUBJECTS.healthStatus,
      queue: SENTINEL_QUEUE,
      handler: (msg) => this.monitor.statusReply(msg),
    });
    this.service.addEndpoint({
      name: 'policy-current',
      subject: SUBJECTS.policyCurrent,
      queue: SENTINEL_QUEUE,
      handler: (msg) => this.announcer.currentReply(msg),
    });
    // Per instance: the parts of a body too large for one message, from the sentinel that announced it.
    this.service.addEndpoint({
      name: 'policy-transfer',
      subject: this.announcer.transferSubject,
      queue: SENTINEL_QUEUE,
      handler: (msg) => this.announcer.transferReply(msg),
    });
    if (config.http) {
      const feed = new StatusFeed(this, clock, version);
      const metrics = createMetrics(this, clock, parts.logStats ?? { dropped: 0 });
      this.feed = feed;
      this.metrics = metrics;
      this.http = new HttpServer(config.http, log, config.httpAllowedHosts)
        .route('/', (_req, res) => {
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': CONTENT_SECURITY_POLICY });
          res.end(STATUS_PAGE_HTML);
        })
        .route('/app.js', (_req, res) => {
          res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'content-security-policy': CONTENT_SECURITY_POLICY });
          res.end(STATUS_PAGE_SCRIPT);
        })
        .route('/status.json', (_req, res) => sendJson(res, 200, feed.document()))
        .route('/events', (req, res) => feed.stream(req, res))
        .route('/metrics', async (_req, res) => {
          const body = await metrics.metrics();
          res.writeHead(200, { 'content-type': metrics.contentType });
          res.end(body);
        })
        .route('/healthz', (_req, res) => {
          const alive = this.heartbeat.alive;
          sendJson(res, alive ? 200 : 503, {
            status: alive ? 'alive' : 'stalled',
            heartbeatLoop: { lastTurnAgoMs: Math.round(clock.now() - this.heartbeat.lastTickAt) },
          });
        })
        .route('/readyz', (_req, res) => {
          const ready = this.ready;
          sendJson(res, ready ? 200 : 503, {
            status: ready ? 'ready' : 'not ready',
            bus: { connected: this.bus.connected, server: this.bus.server },
            policy: {
              revision: this.reloader.inForce?.revision ?? null,
              rejected: this.reloader.lastRejection !== undefined,
            },
          });
        });
    }
  }

  /** Ready: connected to the bus and holding a valid policy snapshot. */
  get ready(): boolean {
    return this.bus.connected && this.reloader.inForce !== undefined;
  }

  /** On every (re)connection: the micro service on the new connection, and a heartbeat at once. */
  private readonly onConnect = () => {
    const nc = this.bus.nc;
    if (nc) this.service.start(nc);
    this.heartbeat.onReconnect();
  };

  /** Reads the policy set, starts the loops and the HTTP listener; connects to the bus in the background. */
  async start(): Promise<void> {
    // Order matters: the monitor subscribes (in its own start) before our first heartbeat goes out.
    this.announcer.start();
    this.monitor.start();
    this.bus.on('connect', this.onConnect);
    this.bus.on('reconnect', this.onConnect);
    this.announcer.on('published', (a) => {
      if (a.subject === SUBJECTS.policyReload) this.monitor.aggregator.setPolicy(a.revision);
    });
    // A new revision in force, or a set rejected, is news in our own heartbeat too: say it now, not an interval later.
    this.reloader.on('applied', () => this.heartbeat.publishIfChanged());
    this.announcer.on('publishFailed', () => this.heartbeat.publishIfChanged());
    this.bus.on('permissionDenied', (denial) => {
      if (denial.operation === 'publish') this.announcer.publishRefused(denial.subject, denial.message);
    });
    await this.reloader.start();
    this.heartbeat.start();
    this.httpAddress = await this.http?.start();
    void this.bus.start();
  }

  /**
   * Leaves cleanly within `timeoutMs`: a last heartbeat (`stopping`), flushed
   * for at most a quarter of it; then everything stops, and the bus
   * connection drains in what is left. Idempotent.
   */
  close(timeoutMs = 1200): Promise<void> {
    this.closing ??= (async () => {
      const deadline = performance.now() + timeoutMs;
      this.bus.off('connect', this.onConnect);
      this.bus.off('reconnect', this.onConnect);
      await this.heartbeat.stop(timeoutMs / 4);
      this.service.stop();
      this.monitor.stop();
      this.announcer.stop();
      this.eventLoop.stop();
      this.feed?.close();
      await Promise.all([this.reloader.close(), this.http?.close(), this.bus.close(Math.max(100, deadline - performance.now()))]);
    })();
    return this.closing;
  }
}

import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { BusConnection } from '../bus/connection.js';
import { HealthMonitor } from '../bus/health-monitor.js';
import { MicroService } from '../bus/micro-service.js';
import { PolicyAnnouncer } from '../bus/policy-announcer.js';
import { systemClock, type Clock } from '../clock.js';
import type { SentinelConfig } from '../config/settings.js';
import { CheckRunner, configuredCheck, eventLoopCheck } from '../health/checks.js';
import { HeartbeatPublisher, type LiveCheck } from '../health/heartbeat.js';
import { rosterOf } from '../health/heartbeat-payload.js';
import { HttpServer } from '../http/http-server.js';
import { createMetrics } from '../http/metrics.js';
import { statusRoutes } from '../http/routes.js';
import { StatusFeed } from '../http/status-feed.js';
import type { LogStats } from '../log/logger.js';
import { loadFiles } from '../policy/load.js';
import { policyFilesOpenForWriting } from '../policy/open-writers.js';
import { ReloadSigner } from '../policy/signature.js';
import { HeartbeatTrust } from '../health/heartbeat-trust.js';
import { heartbeatKey } from './heartbeat-key.js';
import { loadSeedFile } from '../trust/seed-file.js';
import { SENTINEL_QUEUE, SUBJECTS } from '../protocol/topics.js';
import { PolicyReloader } from '../reload/reloader.js';
import { DEFAULT_DIR_CHECK_INTERVAL, PolicyWatcher } from '../watch/policy-watcher.js';
import { leave } from './leave.js';
import { ConfigError, messageOf } from '../errors.js';
import { openHistory } from '../history/open.js';
import type { HistoryStore } from '../history/store.js';
import { Rollout, signRolloutEvent, type RolloutEvent } from '../rollout/rollout.js';
import { operatorHandlers } from '../rollout/operator-requests.js';
import type { SigningKey } from '../trust/ed25519.js';
import { encodeEnvelope, makeEnvelope } from '../protocol/envelope.js';

/** The name standard NATS tooling lists the sentinel under (`nats micro ls`). */
export const SERVICE_NAME = 'nachos-sentinel';

export interface SentinelParts {
  log: Logger;
  instance: string;
  /** This build's version, as the CLI read it. */
  version: string;
  /** What the logger could not write (for /metrics). */
  logStats?: LogStats;
  clock?: Clock;
  /** How often watched directories are checked for replacement (tests shorten it). */
  dirCheckIntervalMs?: number;
}

/**
 * The daemon's composition root: it builds the parts and holds every wire
 * between them, so that "what happens after X?" is answered here, in one
 * place. Parts know nothing of each other: they take ports (the bus's
 * publish, flush and subscribe; read-only views of the policy and the health
 * view) and say what happened through events, which only this file listens
 * to. The CLI builds one and handles signals; tests build one in-process.
 *
 *   files:  watcher --dirty--> reloader --accepted/rejected/recovered--> announcer --> bus
 *                                       \--> heartbeat (news at once), metrics, status page
 *   health: bus --heartbeats--> monitor (aggregator) --transitions--> bus, status page, log
 *           heartbeat publisher --our own heartbeat--> bus (heard back by the monitor)
 */
export class Sentinel {
  readonly watcher: PolicyWatcher;
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
  readonly signer: ReloadSigner | undefined = undefined;
  /** What is in force, for whom: the directory proposes, the rollout decides (canary, rollback). */
  readonly rollout: Rollout;
  /** The policy history, once opened (start). */
  history: HistoryStore | undefined;
  private signingKey: SigningKey | undefined;
  /** Where the HTTP listener is bound, once started (undefined when off or failed). */
  httpAddress: AddressInfo | undefined;
  private readonly eventLoop = eventLoopCheck();
  private closing: Promise<void> | undefined;
  /** The newest statement for everyone, being kept in the history stream. */
  private current: Uint8Array | undefined;

  constructor(
    readonly config: SentinelConfig,
    parts: SentinelParts,
  ) {
    const { log, instance, version } = parts;
    this.instance = instance;
    const clock = parts.clock ?? systemClock;
    const dirCheckIntervalMs = parts.dirCheckIntervalMs ?? DEFAULT_DIR_CHECK_INTERVAL;

    // --- the parts ---------------------------------------------------------
    const where = { dir: config.policies, extraFiles: config.watch };
    this.watcher = new PolicyWatcher({ ...where, checkIntervalMs: dirCheckIntervalMs });
    this.reloader = new PolicyReloader({ ...config, ...where, dirCheckIntervalMs, clock, log, load: loadFiles, ...(config.waitForWriters ? { openWriters: policyFilesOpenForWriting } : {}) });
    this.bus = new BusConnection({ servers: config.servers, name: `${config.component}/${instance}`, log, auth: config });
    if (config.signingSeed) {
      const { key, warning } = loadSeedFile(config.signingSeed, 'signing seed');
      if (warning) log.warn(warning);
      this.signer = new ReloadSigner(key);
      this.signingKey = key;
      log.info({ publicKey: key.publicKey, deployment: config.deployment, expiresAfterMs: config.expiresAfterMs }, 'reloads are signed');
    }
    this.announcer = new PolicyAnnouncer({
      ...config,
      bus: this.bus,
      policy: this.reloader,
      source: config.component,
      instance,
      log,
      signer: this.signer,
      clock,
    });
    this.rollout = new Rollout({
      announcer: this.announcer,
      history: undefined,
      canary: config.canary,
      bakeMs: config.bakeMs,
      build: config,
      instances: () => this.monitor.aggregator.instances(),
      required: config.required,
      clock,
      log,
      by: `${config.component}/${instance}`,
      signer: this.signer?.publicKey ?? null,
    });
    const trust = new HeartbeatTrust({ trust: config.healthTrust, maxClockSkewMs: config.maxClockSkewMs, wallNow: () => clock.wallNow(), now: () => clock.now() });
    this.monitor = new HealthMonitor({
      ...config,
      bus: this.bus,
      clock,
      instance,
      log,
      isOwnHeartbeat: (id) => this.heartbeat.isOwnHeartbeat(id),
      trust,
      rollout: () => this.rollout.view(),
    });
    const runner = new CheckRunner([this.eventLoop, ...config.checks.map(configuredCheck)], () => this.heartbeat.publishIfChanged());
    this.heartbeat = new HeartbeatPublisher({
      bus: this.bus,
      clock,
      component: config.component,
      instance,
      version,
      intervalMs: config.healthIntervalMs,
      runner,
      live: this.ownChecks(),
      // What is in force for everyone: the directory's set, or what a rollback (or a halted canary) keeps.
      policyRevision: () => this.rollout.inForce?.revision ?? null,
      roster: rosterOf(this.monitor.required, config.optional),
      signingKey: heartbeatKey(config, log),
      log,
    });
    this.service = new MicroService({
      name: SERVICE_NAME,
      version,
      description: 'Policy reloads and health for the Nachos bus',
      metadata: { component: config.component, instance },
    });
    this.service.addEndpoint({ name: 'health-status', subject: SUBJECTS.healthStatus, queue: SENTINEL_QUEUE, handler: (msg) => this.monitor.statusReply(msg) });
    this.service.addEndpoint({ name: 'policy-current', subject: SUBJECTS.policyCurrent, queue: SENTINEL_QUEUE, handler: (msg) => this.announcer.currentReply(msg) });
    // Per instance: the parts of a body too large for one message, from the sentinel that announced it.
    this.service.addEndpoint({ name: 'policy-transfer', subject: this.announcer.transferSubject, queue: SENTINEL_QUEUE, handler: (msg) => this.announcer.transferReply(msg) });
    // Operators' requests: every central sentinel acts on each (no queue group), the first to answer answers.
    const operator = operatorHandlers(this.rollout, { component: config.component, instance });
    this.service.addEndpoint({ name: 'policy-rollback', subject: SUBJECTS.policyRollback, queue: undefined, handler: operator.rollback });
    this.service.addEndpoint({ name: 'policy-promote', subject: SUBJECTS.policyPromote, queue: undefined, handler: operator.promote });
    this.service.addEndpoint({ name: 'policy-abort', subject: SUBJECTS.policyAbort, queue: undefined, handler: operator.abort });

    let record: ReturnType<typeof createMetrics>['record'] | undefined;
    const { rollout, reloader } = this;
    if (config.http) {
      this.feed = new StatusFeed(
        {
          identity: { component: config.component, instance, version },
          // What is in force for everyone (a rollback's set while one holds), and the directory's last refusal.
          policy: { get inForce() { return rollout.inForce; }, get lastRejection() { return reloader.lastRejection; } },
          rollout: () => this.rollout.view(),
          announcedSequence: (revision) => (this.announcer.announced?.snapshot.revision === revision ? this.announcer.announced.sequence : null),
          bus: this.bus,
          view: () => this.monitor.aggregator.view(),
        },
        clock,
      );
      const metrics = createMetrics(
        {
          policy: this.reloader,
          health: this.monitor,
          bus: this.bus,
          endpoints: () => this.service.endpointStats(),
          shed: () => this.announcer.shedCounts(),
          heartbeats: this.heartbeat,
          log: parts.logStats ?? { dropped: 0 },
          rollout: this.rollout,
        },
        clock,
      );
      this.metrics = metrics.registry;
      record = metrics.record;
      this.http = new HttpServer(config.http, log, config.httpAllowedHosts);
      statusRoutes(this.http, {
        feed: this.feed,
        metrics: metrics.registry,
        clock,
        heartbeat: this.heartbeat,
        intervalMs: config.healthIntervalMs,
        bus: this.bus,
        policy: this.reloader,
      });
    }

    // --- the wires -----------------------------------------------------------
    // Files: the watcher only says "dirty"; the reloader reads, hashes and decides.
    this.watcher.on('dirty', (kind, file) => {
      record?.watchEvent(kind);
      this.reloader.dirty(kind, file);
    });
    this.watcher.on('error', (err) => {
      record?.watchError();
      log.warn({ err }, 'policy watcher error; the periodic rescan still catches changes');
    });
    // Decisions go on the bus; a new revision, or a set rejected, is news in our own heartbeat at once too.
    // The directory proposes; the rollout decides what is in force, for whom, and tells the announcer.
    this.reloader.on('accepted', (snapshot) => {
      this.rollout.sourceAccepted(snapshot);
      this.feed?.accepted();
    });
    this.reloader.on('rejected', (rejection) => {
      this.announcer.rejected();
      this.rollout.sourceRejected(rejection);
      this.feed?.rejected(rejection);
    });
    this.reloader.on('recovered', (snapshot) => this.rollout.sourceRecovered(snapshot));
    this.rollout.on('changed', () => {
      this.monitor.invalidate();
      this.feed?.accepted();
      this.heartbeat.publishIfChanged();
    });
    this.rollout.on('event', (event) => {
      record?.rolloutEvent(event);
      this.publishRolloutEvent(event);
    });
    this.reloader.on('applied', (outcome, context) => {
      record?.applied(outcome, context);
      this.heartbeat.publishIfChanged();
    });
    // What the bus took, and what it refused (now, or after the fact: permissions).
    this.announcer.on('published', (a) => {
      record?.announced(a);
      // The set for everyone is what convergence is measured against (a canary's is the rollout's business).
      if (a.subject === SUBJECTS.policyReload && a.audience === undefined) {
        this.monitor.aggregator.setPolicy(a.revision);
        if (this.history?.writeCurrent && a.message) this.keepCurrent(this.history, a.message);
      }
      this.rollout.published(a);
    });
    this.announcer.on('publishFailed', (failure) => {
      record?.publishFailed(failure);
      this.heartbeat.publishIfChanged();
    });
    this.bus.on('permissionDenied', (denial) => {
      if (denial.operation === 'publish') this.announcer.publishRefused(denial.subject, denial.message);
    });
    // Health: every transition to the status page.
    this.monitor.on('transition', (t) => this.feed?.transition(t));
    // The connection: services on each new one, then what the bus kept nothing of, said again.
    // Order matters: the monitor is back before our first heartbeat, which it must hear.
    const connected = () => {
      const nc = this.bus.nc;
      if (nc) this.service.start(nc);
      this.monitor.connected();
      this.announcer.connected();
      this.heartbeat.onReconnect();
    };
    this.bus.on('connect', connected);
    this.bus.on('reconnect', connected);
    this.bus.on('disconnect', () => this.monitor.disconnected());
  }

  /** The sentinel's own checks, evaluated at each heartbeat from the parts' state. */
  private ownChecks(): LiveCheck[] {
    return [
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
    ];
  }

  /** A rollout event on `nachos.system.policy.rollout`, signed like reloads when they are. */
  private publishRolloutEvent(event: RolloutEvent): void {
    if (!this.bus.connected) return;
    const message = makeEnvelope(SUBJECTS.policyRollout, this.config.component, event, { now: event.at ? Date.parse(event.at) : undefined });
    try {
      this.bus.publish(SUBJECTS.policyRollout, encodeEnvelope(this.signingKey ? signRolloutEvent(message, this.signingKey) : message));
    } catch {
      // The log line and the history already say it; the bus kept nothing for anyone anyway.
    }
  }

  /** The newest statement for everyone, in the stream: a sidecar that starts while no sentinel runs delivers it. */
  private keepCurrent(history: HistoryStore, message: Uint8Array): void {
    this.current = message;
    const body = this.announcer.transferBody(message);
    // Tried again while it fails, until a newer statement replaces it.
    void this.rollout.retrier
      .run('keeping the statement in force in the history stream', { history: history.where }, async () => history.writeCurrent?.(message, body), () => this.current === message)
      .then((kept) => {
        if (!kept && this.current === message) this.rollout.historyFailures++;
      });
  }

  /** Ready: connected to the bus and holding a valid policy snapshot. */
  get ready(): boolean {
    return this.bus.connected && this.reloader.inForce !== undefined;
  }

  /**
   * Opens the history (a local state directory that cannot be used stops the start, naming it), reads the
   * policy set, starts the loops and the HTTP listener; connects to the bus in the background.
   */
  async start(): Promise<void> {
    try {
      this.history = await openHistory(this.config, { connection: () => this.bus.whenConnected(), maxPayload: () => this.bus.maxPayload });
    } catch (err) {
      // A state directory that cannot be used is a setting's problem: said as one, before anything runs (exit 2).
      throw new ConfigError(`--state-dir ${this.config.stateDir}`, messageOf(err));
    }
    this.rollout.useHistory(this.history);
    void this.rollout.start();
    this.monitor.start();
    await this.watcher.start();
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
    this.closing ??= leave(timeoutMs, this.bus, this.heartbeat, async () => {
      this.service.stop();
      this.rollout.close();
      this.announcer.close();
      this.monitor.stop();
      this.eventLoop.stop();
      this.feed?.close();
      await Promise.all([this.watcher.close(), this.reloader.close(), this.http?.close(), this.rollout.flushed()]);
      await this.history?.close();
    }, () => this.monitor.leaving());
    return this.closing;
  }
}

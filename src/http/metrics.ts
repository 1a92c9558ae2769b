import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Announcement, PublishFailure } from '../bus/policy-announcer.js';
import type { PolicyState } from '../policy/snapshot.js';
import type { Clock } from '../clock.js';
import type { HealthAggregator } from '../health/aggregator.js';
import type { IngestCounters } from '../health/status-payload.js';
import type { LogStats } from '../log/logger.js';
import { SUBJECTS } from '../protocol/topics.js';
import type { ApplyContext, ApplyOutcome } from '../reload/reloader.js';
import type { RolloutView } from '../health/rollout-ledger.js';
import type { RolloutEvent, RolloutEventName } from '../policy/announcements.js';
import { DIRTY_KINDS, type DirtyKind } from '../watch/policy-watcher.js';

const PREFIX = 'nachos_sentinel_';
const COMPONENT_STATUSES = ['healthy', 'degraded', 'unhealthy', 'missing', 'unknown'] as const;
const OVERALL_STATUSES = ['healthy', 'degraded', 'unhealthy', 'unknown'] as const;
/** Per-component series beyond the roster: a flood of component names must not become a flood of series. */
export const MAX_OBSERVED_COMPONENT_SERIES = 100;

/** What the metrics read at scrape time: read-only views of the daemon's parts. */
export interface MetricsSource {
  policy: PolicyState;
  health: {
    readonly counters: IngestCounters;
    readonly shed: number;
    readonly transitionsDropped: number;
    readonly aggregator: Pick<HealthAggregator, 'trackedCount' | 'overall' | 'componentStatuses' | 'policyCounts' | 'rosterDisagreement' | 'cutOff'>;
  };
  bus: { readonly connected: boolean; readonly reconnects: number };
  endpoints: () => { name: string; requests: number; errors: number }[];
  /** Requests shed past the limits, by endpoint and why (`unanswered`: not even told, during a flood). */
  shed: () => { endpoint: string; why: string; count: number }[];
  heartbeats: { readonly published: number };
  log: LogStats;
  /** What is in force for everyone, the rollout's ledger, and the history's failures. */
  rollout: { readonly inForce: { revision: string; ruleCount: number } | undefined; view(): RolloutView; readonly historyFailures: number };
}

/** What happens, told by the composition root as it happens (the counters of events). */
export interface MetricsRecorder {
  watchEvent(kind: DirtyKind): void;
  watchError(): void;
  applied(outcome: ApplyOutcome, context: ApplyContext): void;
  announced(announcement: Announcement): void;
  publishFailed(failure: PublishFailure): void;
  rolloutEvent(event: RolloutEvent): void;
}

/**
 * Prometheus metrics for `/metrics`. Counters of what happens are fed through
 * the recorder; everything that is state is read at scrape time from the
 * source, so nothing can drift from what the daemon holds.
 *
 * The two reload gauges carry the names Prometheus' config reloader uses
 * (`reloader_last_reload_successful`, `reloader_last_reload_success_timestamp_seconds`),
 * so alerts written for config-reloader sidecars (kube-prometheus'
 * ConfigReloaderSidecarErrors, for one) work on this sidecar unchanged.
 */
export function createMetrics(source: MetricsSource, clock: Clock): { registry: Registry; record: MetricsRecorder } {
  const register = new Registry();
  collectDefaultMetrics({ register });
  // prom-client names three gauges with a counter's `_total` suffix, which `promtool check metrics`
  // refuses; their values are the sums of `nodejs_active_handles`, `_requests` and `_resources` by type.
  for (const name of ['handles', 'requests', 'resources'] as const) register.removeSingleMetric(`nodejs_active_${name}_total`);
  const { policy: reloader, health: monitor, bus, heartbeats: heartbeat, log: logStats } = source;
  /** A single-value gauge read at scrape time. */
  const gaugeOf = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [register],
      collect() {
        this.set(read());
      },
    });
  /** A single-value counter whose count the daemon keeps, read at scrape time. */
  const counterOf = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers: [register],
      collect() {
        this.reset();
        this.inc(read());
      },
    });

  const reloads = new Counter({
    name: `${PREFIX}reloads_total`,
    help: 'Policy sets read, by outcome: published (a new valid set), rejected, recovered (back to the set in force after a rejection), unchanged.',
    labelNames: ['outcome'],
    registers: [register],
  });
  for (const outcome of ['published', 'rejected', 'recovered', 'unchanged']) reloads.inc({ outcome }, 0);
  let lastSuccess = 0;
  gaugeOf('reloader_last_reload_successful', 'Whether the last policy set read was valid (1) or rejected (0).', () =>
    reloader.inForce !== undefined && reloader.lastRejection === undefined ? 1 : 0,
  );
  gaugeOf(
    'reloader_last_reload_success_timestamp_seconds',
    'When the last valid policy set was accepted (Unix seconds; 0 before the first).',
    () => lastSuccess,
  );
  const { rollout } = source;
  new Gauge({
    name: `${PREFIX}policy_revision_info`,
    help: 'The policy revision in force for everyone (always 1; the revision is the label): the directory\'s, or what a rollback or a halted canary keeps.',
    labelNames: ['revision'],
    registers: [register],
    collect() {
      this.reset();
      if (rollout.inForce) this.set({ revision: rollout.inForce.revision }, 1);
    },
  });
  gaugeOf(`${PREFIX}policy_rules`, 'Rules in the policy set in force.', () => rollout.inForce?.ruleCount ?? 0);
  gaugeOf(
    `${PREFIX}policy_warnings`,
    'Warnings (unknown keys) in the policy files read last: the set in force, or the set just rejected.',
    () => (reloader.lastRejection ?? reloader.inForce)?.warnings.length ?? 0,
  );
  gaugeOf(
    `${PREFIX}policy_skipped_files`,
    'Invalid files left out of the set in force (invalid_files = skip-file).',
    () => reloader.inForce?.skipped.length ?? 0,
  );
  const watchEvents = new Counter({
    name: `${PREFIX}watch_events_total`,
    help: 'File events seen by the watcher, by kind (change, swap, directory).',
    labelNames: ['kind'],
    registers: [register],
  });
  for (const kind of DIRTY_KINDS) watchEvents.inc({ kind }, 0);
  const watchErrors = new Counter({ name: `${PREFIX}watch_errors_total`, help: 'Errors from the file watcher.', registers: [register] });
  const bursts = new Counter({
    name: `${PREFIX}watch_bursts_total`,
    help: 'Reads of the policy set triggered by file events (one put off while a file was still written counts once).',
    registers: [register],
  });
  const coalesced = new Counter({
    name: `${PREFIX}watch_events_coalesced_total`,
    help: 'File events folded into a read triggered by an earlier one.',
    registers: [register],
  });
  const latency = new Histogram({
    name: `${PREFIX}reload_latency_seconds`,
    help: 'From the first file event of a change to its announcement on the bus.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [register],
  });

  const applied = (outcome: ApplyOutcome, context: ApplyContext) => {
    if (outcome === 'accepted') {
      reloads.inc({ outcome: 'published' });
      lastSuccess = clock.wallNow() / 1000;
      if (context.firstEventAt !== undefined) latency.observe((clock.now() - context.firstEventAt) / 1000);
    } else if (outcome === 'rejected' || outcome === 'recovered') {
      reloads.inc({ outcome });
    } else if (outcome === 'unchanged' || outcome === 'waiting') {
      reloads.inc({ outcome: 'unchanged' });
    }
    // A read put off (`unstable`) is counted with the read that follows it, which carries its events.
    if ((context.trigger === 'watch' || context.trigger === 'swap') && outcome !== 'unstable') {
      bursts.inc();
      if (context.events > 1) coalesced.inc(context.events - 1);
    }
  };

  const announcements = new Counter({
    name: `${PREFIX}announcements_total`,
    help: 'Messages put on the bus by the policy announcer, by subject and reason.',
    labelNames: ['subject', 'reason'],
    registers: [register],
  });

  const publishFailures = new Counter({
    name: `${PREFIX}publish_failures_total`,
    help: 'Announcements the bus did not take (too large, connection lost), by subject.',
    labelNames: ['subject'],
    registers: [register],
  });
  for (const subject of [SUBJECTS.policyReload, SUBJECTS.policyRejected]) publishFailures.inc({ subject }, 0);


  // Heartbeats heard, and why some were not taken.
  counterOf(`${PREFIX}heartbeats_received_total`, 'Messages heard on nachos.system.health.', () => monitor.counters.received);
  counterOf(`${PREFIX}heartbeats_ignored_total`, 'Stopping heartbeats of instances not tracked (never heard, or already gone): nothing to do.', () => monitor.counters.ignored);
  new Counter({
    name: `${PREFIX}heartbeats_rejected_total`,
    help: 'Heartbeats ignored, by reason: oversized, encoding, json, envelope, payload, impostor (under this sentinel\'s own name, not sent by it), signature (a protected component, not signed by its keys, fresh and once), or capacity (over the instance cap).',
    labelNames: ['reason'],
    registers: [register],
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(monitor.counters.rejected)) this.inc({ reason }, n);
      this.inc({ reason: 'capacity' }, monitor.counters.refused);
    },
  });
  counterOf(`${PREFIX}heartbeats_published_total`, 'Heartbeats this sentinel published.', () => heartbeat.published);
  gaugeOf(`${PREFIX}tracked_instances`, '(component, instance) pairs the aggregator tracks.', () => monitor.aggregator.trackedCount);
  new Gauge({
    name: `${PREFIX}health_status`,
    help: 'The overall health status (1 for the current state).',
    labelNames: ['status'],
    registers: [register],
    collect() {
      const current = monitor.aggregator.overall;
      for (const status of OVERALL_STATUSES) this.set({ status }, status === current ? 1 : 0);
    },
  });
  new Gauge({
    name: `${PREFIX}component_status`,
    help: `Status of each rostered component and of up to ${MAX_OBSERVED_COMPONENT_SERIES} others (1 for the current state).`,
    labelNames: ['component', 'role', 'status'],
    registers: [register],
    collect() {
      this.reset();
      let observed = 0;
      for (const c of monitor.aggregator.componentStatuses()) {
        if (c.role === 'observed' && ++observed > MAX_OBSERVED_COMPONENT_SERIES) continue;
        for (const status of COMPONENT_STATUSES) this.set({ component: c.name, role: c.role, status }, status === c.status ? 1 : 0);
      }
    },
  });
  gaugeOf(
    `${PREFIX}policy_convergence_ratio`,
    'Share of live instances that report a policy revision and run the one in force, every file of it read by their consumer (1 when none report).',
    () => {
      const { reporting, onRevision } = monitor.aggregator.policyCounts();
      return reporting === 0 ? 1 : onRevision / reporting;
    },
  );
  counterOf(`${PREFIX}log_lines_dropped_total`, 'Log lines dropped because stdout did not take them and the buffer was full.', () => logStats.dropped);
  counterOf(`${PREFIX}heartbeats_evicted_total`, 'Instances dropped to make room for newer ones (oldest silent or stale, else heard only once, else least recently heard outside the roster).', () => monitor.counters.evicted);
  counterOf(`${PREFIX}status_requests_shed_total`, 'Status requests turned away (ADR-32 503) past the rate, so heartbeats go first.', () => monitor.shed);
  counterOf(`${PREFIX}transitions_dropped_total`, 'Instance transitions not published on nachos.system.health.changed, past the rate (a flood).', () => monitor.transitionsDropped);
  gaugeOf(`${PREFIX}roster_disagreement`, 'Whether live sentinels judge by different rosters (1), so that their answers differ.', () =>
    monitor.aggregator.rosterDisagreement ? 1 : 0,
  );
  gaugeOf(`${PREFIX}cut_off`, 'Whether the sentinel is connected but cut off from the bus (the server does not answer, or its own heartbeats do not come back).', () =>
    monitor.aggregator.cutOff !== undefined ? 1 : 0,
  );
  gaugeOf(`${PREFIX}bus_connected`, 'Whether the sentinel is connected to the bus.', () => (bus.connected ? 1 : 0));
  counterOf(`${PREFIX}bus_reconnects_total`, 'Reconnections to the bus since start.', () => bus.reconnects);
  new Counter({
    name: `${PREFIX}requests_total`,
    help: 'Requests answered, by endpoint (health-status, policy-current).',
    labelNames: ['endpoint'],
    registers: [register],
    collect() {
      this.reset();
      for (const ep of source.endpoints()) this.inc({ endpoint: ep.name }, ep.requests);
    },
  });
  new Counter({
    name: `${PREFIX}request_errors_total`,
    help: 'Requests that failed, by endpoint.',
    labelNames: ['endpoint'],
    registers: [register],
    collect() {
      this.reset();
      for (const ep of source.endpoints()) this.inc({ endpoint: ep.name }, ep.errors);
    },
  });
  new Counter({
    name: `${PREFIX}requests_shed_total`,
    help: 'Requests shed past the limits, by endpoint (policy-current, policy-transfer) and why: requester (one requester past its rate), total, bytes (reply bytes per second), outstanding (reply bytes not yet taken by the server), unanswered (past the rate of 503s, not even told).',
    labelNames: ['endpoint', 'why'],
    registers: [register],
    collect() {
      this.reset();
      for (const s of source.shed()) this.inc({ endpoint: s.endpoint, why: s.why }, s.count);
    },
  });
  // The rollout: its verdict, its instances, a canary, a rollback (read from one view per scrape).
  let viewAt = -Infinity;
  let view: RolloutView | undefined;
  const ledger = (): RolloutView => {
    if (!view || clock.now() - viewAt > 100) {
      view = rollout.view();
      viewAt = clock.now();
    }
    return view;
  };
  new Gauge({
    name: `${PREFIX}rollout_verdict`,
    help: 'The rollout of the set in force, as `rollout status` judges it (1 for the current verdict): complete, progressing, failed.',
    labelNames: ['verdict'],
    registers: [register],
    collect() {
      const current = ledger().verdict;
      for (const verdict of ['complete', 'progressing', 'failed'] as const) this.set({ verdict }, verdict === current ? 1 : 0);
    },
  });
  new Gauge({
    name: `${PREFIX}rollout_instances`,
    help: 'Instances that report a policy revision, by rollout state: done (on their set, healthy), pending, failed.',
    labelNames: ['state'],
    registers: [register],
    collect() {
      const { instances, omitted } = ledger();
      const counts = { done: 0, pending: 0, failed: 0 };
      for (const line of instances) counts[line.state]++;
      // Lines left out of a long ledger are done ones (the failed and pending are listed first).
      counts.done += omitted ?? 0;
      for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
    },
  });
  new Gauge({
    name: `${PREFIX}rollout_canary`,
    help: 'A canary, by phase (1 for the current one; all 0 without one): delivering, baking, halted.',
    labelNames: ['phase'],
    registers: [register],
    collect() {
      const phase = ledger().canary?.phase;
      for (const p of ['delivering', 'baking', 'halted'] as const) this.set({ phase: p }, p === phase ? 1 : 0);
    },
  });
  gaugeOf(`${PREFIX}rollout_rolled_back`, 'Whether a rollback is in force (1): an earlier set stands in for the directory\'s.', () => (ledger().rolledBack ? 1 : 0));
  const rolloutEvents = new Counter({
    name: `${PREFIX}rollout_events_total`,
    help: 'Rollout events, by event: canary, baking, released, halted, promoted, aborted, rollback, release.',
    labelNames: ['event'],
    registers: [register],
  });
  for (const event of ['canary', 'baking', 'released', 'halted', 'promoted', 'aborted', 'rollback', 'release'] satisfies RolloutEventName[]) rolloutEvents.inc({ event }, 0);
  counterOf(`${PREFIX}history_failures_total`, 'Writes to the policy history given up on after a minute of retries (the history has a gap; the announcements went out).', () => rollout.historyFailures);
  return {
    registry: register,
    record: {
      rolloutEvent: (e) => rolloutEvents.inc({ event: e.event }),
      watchEvent: (kind) => watchEvents.inc({ kind }),
      watchError: () => watchErrors.inc(),
      applied,
      announced: (a) => announcements.inc({ subject: a.subject, reason: a.reason ?? (a.subject === SUBJECTS.policyRejected ? 'rejected' : '') }),
      publishFailed: (f) => publishFailures.inc({ subject: f.subject }),
    },
  };
}

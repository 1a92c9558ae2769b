import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { IncomingHttpHeaders } from 'node:http';
import { messageOf } from '../errors.js';
import { httpRequest, type HttpAnswer } from '../protocol/http-request.js';
import { shownUrl } from '../text/shown-url.js';
import { OWN_CHECK_SLOTS, UNNAMED, type CheckSpec } from './check-specs.js';
import { MAX_CHECKS, MAX_VERSION, type CheckDetail, type NachosStatus, type ReportedStatus } from './heartbeat-payload.js';

/** What a neighbour says of itself: the status and checks of a Nachos HealthCheck body, its version and uptime when it gives them. */
export interface NeighbourReport {
  status: NachosStatus;
  checks: Record<string, 'ok' | 'error'>;
  version?: string;
  /** Seconds since the neighbour started, as it said when last checked. */
  uptime?: number;
}

/** The neighbour's own version and uptime, as the first check that read them from its HealthCheck found them. */
export interface NeighbourFacts {
  version?: string;
  uptime?: number;
}

/** What one run of a check found. */
export interface CheckOutcome {
  ok: boolean;
  message?: string;
  /** The neighbour's own verdict, when it answered with a Nachos HealthCheck: the heartbeat takes it over. */
  report?: NeighbourReport;
}

/** The outcome of one check run. */
export interface CheckResult extends CheckOutcome {
  latencyMs: number;
}

/** A check the runner can run: the sentinel's own (in-process) or one of the container beside it. */
export interface Check {
  name: string;
  required: boolean;
  timeoutMs: number;
  run(signal: AbortSignal): Promise<CheckOutcome>;
}

/** A HealthCheck body is read up to this; a larger one is not a HealthCheck. */
const MAX_REPORT_BYTES = 64 * 1024;
/** Check names taken from a neighbour's report, and their length, at most. */
const MAX_REPORTED_CHECKS = 32;
const MAX_REPORTED_NAME = 48;

const SEVERITY: Record<NachosStatus, number> = { healthy: 0, degraded: 1, unhealthy: 2 };

/** Event-loop lag above this makes the `event_loop` check fail (optional: degraded). */
export const EVENT_LOOP_LAG_LIMIT = 500; // ms

/**
 * A failing check's effect on a status: a required one makes it unhealthy, an
 * optional one at least degraded. `unknown` stays unknown under an optional
 * failure: degraded would vouch for the rest (and pass the probe).
 */
export function withFailure<S extends ReportedStatus>(status: S, required: boolean): S | 'unhealthy' | 'degraded' {
  return required ? 'unhealthy' : status === 'healthy' ? 'degraded' : status;
}

/**
 * Runs checks and keeps their latest results. Each run is cut off at its
 * timeout, and a check still running is not started again, so one stuck
 * check never stalls the others or the heartbeat, which publishes whatever
 * is known.
 */
export class CheckRunner {
  private readonly results = new Map<string, CheckResult & { required: boolean }>();
  private readonly running = new Set<string>();
  private readonly inFlight = new Set<AbortController>();
  private stopped = false;

  constructor(
    private readonly checks: readonly Check[],
    /** Called when a check's outcome (ok or not) changes. */
    private readonly onChange: () => void = () => undefined,
  ) {}

  /** Starts every check that is not already running; resolves when those finish (each within its timeout). */
  async runAll(): Promise<void> {
    if (this.stopped) return;
    await Promise.all(this.checks.filter((c) => !this.running.has(c.name)).map((c) => this.runOne(c)));
  }

  /** Cuts off the checks in flight (a command is killed) and runs no more. */
  stop(): void {
    this.stopped = true;
    for (const controller of this.inFlight) controller.abort();
  }

  /** True once every check has a result. */
  get complete(): boolean {
    return this.results.size === this.checks.length;
  }

  /** How many checks it runs. */
  get size(): number {
    return this.checks.length;
  }

  /**
   * `name -> ok | error` and details, for the heartbeat. A neighbour's own
   * report is taken over: its status (at least), and its checks, under their
   * own names (or `check.name` when a name is taken or `reserved`); and its
   * version and uptime, as `neighbour`.
   */
  snapshot(reserved: readonly string[] = []): {
    checks: Record<string, 'ok' | 'error'>;
    details: Record<string, CheckDetail>;
    status: NachosStatus;
    neighbour: NeighbourFacts;
  } {
    const checks: Record<string, 'ok' | 'error'> = {};
    const details: Record<string, CheckDetail> = {};
    let status: NachosStatus = 'healthy';
    for (const [name, r] of this.results) {
      checks[name] = r.ok ? 'ok' : 'error';
      details[name] = { required: r.required, latencyMs: r.latencyMs, ...(r.message ? { message: r.message } : {}) };
      if (!r.ok) status = withFailure(status, r.required);
    }
    // What the neighbour reports fits beside our own checks in a heartbeat (MAX_CHECKS in all).
    let room = MAX_CHECKS - OWN_CHECK_SLOTS - Object.keys(checks).length;
    for (const [name, r] of this.results) {
      if (!r.ok || !r.report) continue;
      if (SEVERITY[r.report.status] > SEVERITY[status]) status = r.report.status;
      for (const [reported, result] of Object.entries(r.report.checks)) {
        const key = reported in checks || reserved.includes(reported) ? `${name}.${reported}` : reported;
        if (key in checks || room <= 0) continue;
        room--;
        checks[key] = result;
        if (result === 'error') details[key] = { required: r.required, message: `reported by ${name}` };
      }
    }
    return { checks, details, status, neighbour: this.neighbourFacts() };
  }

  /** The version and uptime of the first check (in the order given) whose neighbour reported each, when it last answered. */
  private neighbourFacts(): NeighbourFacts {
    const facts: NeighbourFacts = {};
    for (const check of this.checks) {
      const report = this.results.get(check.name)?.report;
      if (facts.version === undefined && report?.version !== undefined) facts.version = report.version;
      if (facts.uptime === undefined && report?.uptime !== undefined) facts.uptime = report.uptime;
    }
    return facts;
  }

  private async runOne(check: Check): Promise<void> {
    this.running.add(check.name);
    const started = performance.now();
    const controller = new AbortController();
    this.inFlight.add(controller);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<{ ok: boolean; message: string }>((resolve) => {
      timer = setTimeout(() => {
        // Settle first: aborting makes the check itself settle too, with a vaguer message.
        resolve({ ok: false, message: timeoutReason(check.timeoutMs) });
        controller.abort();
      }, check.timeoutMs);
    });
    let outcome: CheckOutcome;
    try {
      outcome = await Promise.race([check.run(controller.signal), timeout]);
    } catch (err) {
      outcome = { ok: false, message: messageOf(err) };
    } finally {
      clearTimeout(timer);
      this.running.delete(check.name);
      this.inFlight.delete(controller);
    }
    if (this.stopped) return;
    const previous = this.results.get(check.name);
    this.results.set(check.name, {
      ok: outcome.ok,
      required: check.required,
      latencyMs: Math.round(performance.now() - started),
      ...(outcome.message ? { message: outcome.message.slice(0, 200) } : {}),
      ...(outcome.ok && outcome.report ? { report: outcome.report } : {}),
    });
    if (previous?.ok !== outcome.ok || reportKey(previous?.report) !== reportKey(outcome.ok ? outcome.report : undefined)) this.onChange();
  }
}

/** A check of the container beside the sentinel, from its configuration. */
export function configuredCheck(spec: CheckSpec): Check {
  // A `--check URL` is named where the component is known (nameChecks): a check named '' is a wiring mistake.
  if (spec.name === UNNAMED) throw new TypeError('a check has no name: name it with nameChecks first');
  const base = { name: spec.name, required: spec.required, timeoutMs: spec.timeoutMs };
  switch (spec.type) {
    case 'http':
      return {
        ...base,
        async run(signal) {
          let res: HttpAnswer;
          try {
            res = await httpRequest(spec.url, { signal, readBody: mayBeReport, maxBody: MAX_REPORT_BYTES });
          } catch (err) {
            return { ok: false, message: withoutSecrets(failureReason(err), spec.url) };
          }
          // A Nachos HealthCheck (200 when healthy, 503 otherwise) speaks for itself, whatever its status code.
          const report = readReport(res.body);
          if (report) return { ok: true, report, ...(report.status === 'healthy' ? {} : { message: `HTTP ${res.status}: reports ${report.status}` }) };
          return res.status === spec.expectStatus ? { ok: true } : { ok: false, message: `HTTP ${res.status}, expected ${spec.expectStatus}` };
        },
      };
    case 'tcp':
      return {
        ...base,
        run: (signal) =>
          new Promise((resolve) => {
            const socket = connect({ host: spec.host, port: spec.port });
            const done = (result: { ok: boolean; message?: string }) => {
              socket.destroy();
              resolve(result);
            };
            signal.addEventListener('abort', () => done({ ok: false, message: timeoutReason(spec.timeoutMs) }));
            socket.once('connect', () => done({ ok: true }));
            socket.once('error', (err) => done({ ok: false, message: failureReason(err) }));
          }),
      };
    case 'command':
      return {
        ...base,
        run: (signal) =>
          new Promise((resolve) => {
            const [file, ...args] = spec.argv as [string, ...string[]];
            // In a process group of its own, killed whole when the check is cut off: `sh -c` leaves
            // its children running when only the shell is killed.
            const child = spawn(file, args, { stdio: 'ignore', detached: true });
            const killGroup = () => {
              try {
                if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
              } catch {
                // already gone
              }
            };
            signal.addEventListener('abort', killGroup, { once: true });
            child.once('exit', () => signal.removeEventListener('abort', killGroup));
            child.once('error', (err) => resolve({ ok: false, message: messageOf(err) }));
            child.once('exit', (code, sig) => {
              if (code === spec.expectExit) resolve({ ok: true });
              else resolve({ ok: false, message: sig ? `killed by ${sig}` : `exit code ${code}, expected ${spec.expectExit}` });
            });
          }),
      };
  }
}

/**
 * Why a check could not reach its neighbour, in the operating system's words:
 * `connect ECONNREFUSED 127.0.0.1:8081`, `getaddrinfo ENOTFOUND gateway`.
 * fetch (undici) says only `fetch failed` and keeps them in its `cause` (no
 * check uses fetch since the sidecar left it; the unwrapping stays for any
 * error that comes from it, and its test with it); a
 * connection tried on each address of a name fails with an AggregateError
 * whose own message is empty (Node's autoSelectFamily), its errors say them.
 */
export function failureReason(err: unknown): string {
  if (err instanceof TypeError && err.message === 'fetch failed' && err.cause !== undefined) return failureReason(err.cause);
  if (err instanceof AggregateError && err.message === '' && err.errors.length > 0) return [...new Set(err.errors.map(failureReason))].join('; ');
  const message = messageOf(err).trim();
  if (message !== '') return message;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'failed';
}

/** The words of a check cut off by its timeout: `timeout after 2s`, `timeout after 500ms`, `timeout after 1.5s`. */
export function timeoutReason(ms: number): string {
  return `timeout after ${durationWords(ms)}`;
}

/** A duration as people write it: 500 -> `500ms`, 2000 -> `2s`, 1500 -> `1.5s`, 90000 -> `1m30s`. */
function durationWords(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Number(((ms - minutes * 60_000) / 1000).toFixed(3));
  return `${minutes > 0 ? `${minutes}m` : ''}${seconds > 0 || minutes === 0 ? `${seconds}s` : ''}`;
}

/**
 * A reason with the check's URL as shownUrl shows it: the request names the
 * URL in some of its errors (one with a user and password in it), and a query
 * may hold a token.
 */
function withoutSecrets(reason: string, url: string): string {
  const shown = shownUrl(url);
  let out = reason.split(url).join(shown);
  const search = new URL(url).search;
  if (search.length > 1) out = out.split(search).join(shown.slice(shown.indexOf('?')));
  return out;
}

/** A body that may be a Nachos HealthCheck: JSON (or untyped), and not said to be larger than one may be. */
function mayBeReport(_status: number, headers: IncomingHttpHeaders): boolean {
  return Number(headers['content-length'] ?? 0) <= MAX_REPORT_BYTES && /json/i.test(headers['content-type'] ?? 'application/json');
}

/**
 * The body as a Nachos HealthCheck (`status`, `component`, `checks`), or
 * undefined: any other body (or none, or one too large) is not read further.
 * Check names are the neighbour's; they are bounded in number and length.
 * Its `version` (up to MAX_VERSION characters, printable) and `uptime` (a
 * finite number of seconds, not negative) are kept when they are well formed.
 */
function readReport(text: string | undefined): NeighbourReport | undefined {
  if (text === undefined) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  const { status, component, checks, version, uptime } = (body ?? {}) as { status?: unknown; component?: unknown; checks?: unknown; version?: unknown; uptime?: unknown };
  if (typeof status !== 'string' || !(status in SEVERITY) || typeof component !== 'string' || !checks || typeof checks !== 'object' || Array.isArray(checks)) {
    return undefined;
  }
  const reported: Record<string, 'ok' | 'error'> = {};
  for (const [name, result] of Object.entries(checks).slice(0, MAX_REPORTED_CHECKS)) {
    if ((result === 'ok' || result === 'error') && name.length > 0 && name.length <= MAX_REPORTED_NAME) reported[name] = result;
  }
  return {
    status: status as NachosStatus,
    checks: reported,
    // Shown on status pages and terminals: no control characters, and no longer than a heartbeat's version may be.
    ...(typeof version === 'string' && version.length > 0 && !/\p{Cc}/u.test(version) ? { version: version.slice(0, MAX_VERSION) } : {}),
    ...(typeof uptime === 'number' && Number.isFinite(uptime) && uptime >= 0 ? { uptime } : {}),
  };
}

function reportKey(report: NeighbourReport | undefined): string {
  return report ? `${report.status}:${Object.entries(report.checks).join(',')}` : '';
}

/**
 * Event-loop lag since the previous run: the longest delay seen by a 20 ms
 * timer histogram. A daemon whose loop stalls answers late and heartbeats late.
 */
export function eventLoopCheck(limitMs = EVENT_LOOP_LAG_LIMIT): Check & { stop(): void } {
  const histogram = monitorEventLoopDelay({ resolution: 20 });
  histogram.enable();
  return {
    name: 'event_loop',
    required: false,
    timeoutMs: 1000,
    async run() {
      const lagMs = Math.max(0, histogram.max / 1e6 - 20);
      histogram.reset();
      return lagMs > limitMs ? { ok: false, message: `event loop lagged ${Math.round(lagMs)} ms` } : { ok: true };
    },
    stop: () => histogram.disable(),
  };
}

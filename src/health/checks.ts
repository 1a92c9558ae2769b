import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { messageOf } from '../errors.js';
import type { CheckSpec } from './check-specs.js';
import type { CheckDetail, ReportedStatus } from './heartbeat-payload.js';

/** The outcome of one check run. */
export interface CheckResult {
  ok: boolean;
  message?: string;
  latencyMs: number;
}

/** A check the runner can run: the sentinel's own (in-process) or one of the container beside it. */
export interface Check {
  name: string;
  required: boolean;
  timeoutMs: number;
  run(signal: AbortSignal): Promise<{ ok: boolean; message?: string }>;
}

/** Event-loop lag above this makes the `event_loop` check fail (optional: degraded). */
export const EVENT_LOOP_LAG_LIMIT = 500; // ms

/** A failing check's effect on a status: a required one makes it unhealthy, an optional one at least degraded. */
export function withFailure(status: ReportedStatus, required: boolean): ReportedStatus {
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

  /** `name -> ok | error` and details, for the heartbeat. */
  snapshot(): { checks: Record<string, 'ok' | 'error'>; details: Record<string, CheckDetail>; status: ReportedStatus } {
    const checks: Record<string, 'ok' | 'error'> = {};
    const details: Record<string, CheckDetail> = {};
    let status: ReportedStatus = 'healthy';
    for (const [name, r] of this.results) {
      checks[name] = r.ok ? 'ok' : 'error';
      details[name] = { required: r.required, latencyMs: r.latencyMs, ...(r.message ? { message: r.message } : {}) };
      if (!r.ok) status = withFailure(status, r.required);
    }
    return { checks, details, status };
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
        resolve({ ok: false, message: `timed out after ${check.timeoutMs} ms` });
        controller.abort();
      }, check.timeoutMs);
    });
    let outcome: { ok: boolean; message?: string };
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
    });
    if (previous?.ok !== outcome.ok) this.onChange();
  }
}

/** A check of the container beside the sentinel, from its configuration. */
export function configuredCheck(spec: CheckSpec): Check {
  const base = { name: spec.name, required: spec.required, timeoutMs: spec.timeoutMs };
  switch (spec.type) {
    case 'http':
      return {
        ...base,
        async run(signal) {
          const res = await fetch(spec.url, { signal, redirect: 'manual' });
          await res.body?.cancel();
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
            signal.addEventListener('abort', () => done({ ok: false, message: 'timed out' }));
            socket.once('connect', () => done({ ok: true }));
            socket.once('error', (err) => done({ ok: false, message: messageOf(err) }));
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

import { spawn } from 'node:child_process';
import type { Logger } from 'pino';
import { messageOf } from '../errors.js';
import { httpRequest } from '../protocol/http-request.js';
import { shownUrl } from '../text/shown-url.js';

/** The first retry of a reload POST, doubled after each failure up to the cap (Prometheus' config reloader backs off the same way). */
export const RETRY_FIRST = 500; // ms
export const RETRY_MAX = 30_000; // 30 s

export interface ReloadNotifierOptions {
  /** POSTed after each delivery until it answers 2xx. */
  url: string | undefined;
  /** Sent with each POST (credentials); never logged. */
  headers?: Record<string, string>;
  /** Run by /bin/sh -c after each delivery, once. */
  command: string | undefined;
  timeoutMs: number;
  log: Logger;
  /** Told whenever `failure` changes (the heartbeat says it at once). */
  onChange?: () => void;
}

/**
 * Tells the neighbour that a new set is on disk: a POST to its reload URL,
 * retried with backoff until it answers 2xx or a newer delivery supersedes it;
 * and a command, run once with a timeout, one at a time (deliveries while it
 * runs make one more run, for the newest). The last failure is kept for the
 * sidecar's health until the next success. The URL is only ever shown with
 * its credentials and query values hidden.
 */
export class ReloadNotifier {
  private readonly problems: { post?: string; command?: string } = {};
  /** Attempts made (POSTs and command runs), for tests and the log. */
  readonly counts = { posts: 0, commands: 0 };
  private generation = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** A command is running; `nextRevision`, when set, runs after it. */
  private commandRunning = false;
  private nextRevision: string | undefined;
  private readonly shown: string | undefined;
  /** The newest revision told, and which of its POST and command have succeeded once. */
  private told: { revision: string; posted: boolean; commanded: boolean } | undefined;

  constructor(private readonly options: ReloadNotifierOptions) {
    this.shown = options.url === undefined ? undefined : shownUrl(options.url);
  }

  /** Why the last POST or command failed, until one succeeds. */
  get failure(): string | undefined {
    const { post, command } = this.problems;
    return post && command ? `${post}; ${command}` : (post ?? command);
  }

  /**
   * The hook's result for the newest set told: `pending` until its POST and its command (those
   * configured) have each succeeded once, `failed` while one fails, else `ok`.
   */
  get hook(): { revision: string; state: 'pending' | 'ok' | 'failed'; error?: string } | undefined {
    const told = this.told;
    if (!told) return undefined;
    const failure = this.failure;
    if (failure !== undefined) return { revision: told.revision, state: 'failed', error: failure };
    const done = (this.options.url === undefined || told.posted) && (this.options.command === undefined || told.commanded);
    return { revision: told.revision, state: done ? 'ok' : 'pending' };
  }

  get enabled(): boolean {
    return this.options.url !== undefined || this.options.command !== undefined;
  }

  /** A new set was delivered: tell the neighbour, dropping any retry for an older one. */
  notify(revision: string): void {
    if (this.closed) return;
    const generation = ++this.generation;
    clearTimeout(this.timer);
    if (this.enabled) this.told = { revision, posted: false, commanded: false };
    if (this.options.command !== undefined) this.command(revision);
    if (this.options.url !== undefined) void this.post(revision, generation, RETRY_FIRST);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  /** Runs the command for `revision`, or once more after the one running (for the newest revision only). */
  private command(revision: string): void {
    if (this.commandRunning) {
      this.nextRevision = revision;
      return;
    }
    this.commandRunning = true;
    void this.runCommand(revision).then(() => {
      this.commandRunning = false;
      const next = this.nextRevision;
      this.nextRevision = undefined;
      if (next !== undefined && !this.closed) this.command(next);
    });
  }

  private async post(revision: string, generation: number, nextWait: number): Promise<void> {
    const { url, timeoutMs, log } = this.options;
    const shown = this.shown as string;
    this.counts.posts++;
    let problem: string | undefined;
    try {
      const res = await httpRequest(url as string, { method: 'POST', headers: this.options.headers ?? {}, signal: AbortSignal.timeout(timeoutMs) });
      if (res.status < 200 || res.status > 299) problem = `POST ${shown} answered HTTP ${res.status}`;
    } catch (err) {
      // The error's own text may quote the URL: it is not shown.
      problem = `POST ${shown} failed: ${messageOf(err).split(url as string).join(shown)}`;
    }
    if (generation !== this.generation || this.closed) return;
    if (problem === undefined) {
      log.info({ revision, url: shown }, 'the neighbour was told to reload');
      if (this.told?.revision === revision) this.told.posted = true;
      this.setProblem('post', undefined);
      this.options.onChange?.();
      return;
    }
    log.warn({ revision, retryInMs: nextWait }, `${problem}; trying again`);
    this.setProblem('post', problem);
    this.timer = setTimeout(() => void this.post(revision, generation, Math.min(nextWait * 2, RETRY_MAX)), nextWait);
    this.timer.unref();
  }

  private runCommand(revision: string): Promise<void> {
    const { command, timeoutMs, log } = this.options;
    this.counts.commands++;
    return new Promise((resolve) => {
      // In a process group of its own, killed whole at the timeout.
      const child = spawn('/bin/sh', ['-c', command as string], { stdio: 'ignore', detached: true, env: { ...process.env, NACHOS_POLICY_REVISION: revision } });
      const timer = setTimeout(() => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }, timeoutMs);
      const done = (problem: string | undefined) => {
        clearTimeout(timer);
        if (problem === undefined) log.info({ revision }, 'the reload command succeeded');
        else log.warn({ revision }, problem);
        if (problem === undefined && this.told?.revision === revision) this.told.commanded = true;
        if (!this.closed) {
          this.setProblem('command', problem);
          this.options.onChange?.();
        }
        resolve();
      };
      child.once('error', (err) => done(`the reload command could not start: ${messageOf(err)}`));
      child.once('exit', (code, signal) =>
        done(code === 0 ? undefined : signal ? `the reload command was killed (${signal}; timeout ${timeoutMs} ms)` : `the reload command exited ${code}`),
      );
    });
  }

  private setProblem(kind: 'post' | 'command', problem: string | undefined): void {
    if (problem === this.problems[kind]) return;
    this.problems[kind] = problem;
    this.options.onChange?.();
  }
}

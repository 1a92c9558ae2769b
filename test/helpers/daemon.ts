import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { until } from './until.js';

/** The compiled executable, as `npm ci` leaves it. */
export const BIN = path.resolve(import.meta.dirname, '../../dist/cli/bin.cjs');

/** What runs the daemon: the executable and the Node binary that runs it. */
export interface Executable {
  bin: string;
  node: string;
}
const OWN: Executable = { bin: BIN, node: process.execPath };

/** The executable run as a child process, its output kept for assertions. */
export class Daemon {
  stdout = '';
  stderr = '';
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exited: Promise<void>;

  private constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (c: Buffer) => (this.stdout += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (this.stderr += c.toString()));
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve();
      }),
    );
  }

  /** Starts a long-running daemon, on an ephemeral HTTP port so that daemons side by side never collide. */
  static start(args: string[], env: Record<string, string> = {}, cwd?: string, user?: { uid: number; gid: number }, executable = OWN): Daemon {
    return Daemon.spawn(args, { SENTINEL_HTTP: '127.0.0.1:0', ...env }, cwd, user, executable);
  }

  /**
   * The built executable copied where any user can read it: a checkout in a private home
   * directory (mode 0700) is out of an unprivileged user's reach. The daemon is one bundle
   * (dist/cli/daemon.mjs) with its entry and package.json: nothing else is needed. The Node
   * binary is copied too when it sits out of reach (CI's Node 24, unpacked inside the checkout).
   */
  static readableCopy(dir: string): Executable {
    const cli = path.join(dir, 'dist', 'cli');
    mkdirSync(cli, { recursive: true });
    for (const file of ['bin.cjs', 'daemon.mjs']) copyFileSync(path.join(path.dirname(BIN), file), path.join(cli, file));
    copyFileSync(path.resolve(path.dirname(BIN), '../../package.json'), path.join(dir, 'package.json'));
    for (const d of [dir, path.join(dir, 'dist'), cli]) chmodSync(d, 0o755);
    let node = process.execPath;
    if (!anyoneMayRun(node)) {
      node = path.join(dir, 'node');
      copyFileSync(process.execPath, node);
      chmodSync(node, 0o755);
    }
    return { bin: path.join(cli, 'bin.cjs'), node };
  }

  private static spawn(args: string[], env: Record<string, string>, cwd?: string, user?: { uid: number; gid: number }, { bin, node } = OWN): Daemon {
    // A state directory of its own (the policy history), unless the test names one: never the machine's.
    const own = env.SENTINEL_STATE_DIR === undefined && !args.some((a) => a.startsWith('--state-dir'));
    const stateDir = own ? mkdtempSync(path.join(tmpdir(), 'sentinel-state-')) : undefined;
    if (stateDir && user) chownSync(stateDir, user.uid, user.gid);
    const child = spawn(node, [bin, ...args], {
      cwd,
      ...user,
      // A clean environment: nothing from the machine (NATS_URL, ...) leaks into a test.
      env: { PATH: process.env.PATH ?? '', ...(stateDir ? { SENTINEL_STATE_DIR: stateDir } : {}), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const daemon = new Daemon(child);
    if (stateDir) void daemon.exited.then(() => rmSync(stateDir, { recursive: true, force: true }));
    return daemon;
  }

  /** Runs a command to completion (validate, --once, --help). */
  static async run(args: string[], env: Record<string, string> = {}, cwd?: string) {
    const d = Daemon.spawn(args, env, cwd);
    await d.exited;
    return { code: d.exit?.code, stdout: d.stdout, stderr: d.stderr };
  }

  /** The JSON log lines printed so far. */
  get logs(): Record<string, unknown>[] {
    return this.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  waitForLog(predicate: (line: Record<string, unknown>) => boolean, timeoutMs = 10_000, what = 'a log line') {
    return until(() => this.logs.find(predicate), timeoutMs, what);
  }

  /**
   * Sends `signal` and waits for the exit; returns the exit and how long it took.
   * A process still there after 10 s is killed (and its exit then says SIGKILL).
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM') {
    const started = performance.now();
    if (!this.exit) this.child.kill(signal);
    const killer = setTimeout(() => this.kill(), 10_000);
    await this.exited;
    clearTimeout(killer);
    return { ...this.exit, elapsedMs: performance.now() - started };
  }

  kill(): void {
    if (!this.exit) this.child.kill('SIGKILL');
  }
}

/** Every directory on the way searchable by others, and the file executable by them. */
function anyoneMayRun(file: string): boolean {
  if ((statSync(file).mode & 0o001) === 0) return false;
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) return false;
    if (dir === path.dirname(dir)) return true;
  }
}

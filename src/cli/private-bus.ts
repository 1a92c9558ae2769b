import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { DEFAULT_SERVERS } from '../config/listen-address.js';

/**
 * `--dev` (what `npm start` runs): a first run on a machine with no bus gets
 * one. When no server was configured (no `--servers`, `NATS_SERVERS`,
 * `NATS_URL` or `servers` in the config file) and nothing answers on the
 * default URL, a private nats-server is started on that address, for this
 * process only, said in one log line, and stopped when the daemon stops. A
 * configured URL never starts one: production names its bus.
 */

const HOST = '127.0.0.1';
const PORT = 4222;
/** How long "nothing answers" is given to be sure. */
const PROBE_MS = 300;

/** Where nats-server is: NATS_SERVER_BIN, PATH, or Debian's /usr/sbin. */
function natsServerBinary(env: NodeJS.ProcessEnv): string | undefined {
  const candidates = [env.NATS_SERVER_BIN, ...(env.PATH ?? '').split(path.delimiter).map((d) => path.join(d, 'nats-server')), '/usr/sbin/nats-server', '/usr/local/bin/nats-server'];
  return candidates.find((c) => {
    if (!c) return false;
    try {
      accessSync(c, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Whether something accepts a TCP connection at host:port within PROBE_MS. */
function answers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(PROBE_MS, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Whether the servers were named anywhere (a flag, the environment, the config file). */
export function serversConfigured(flags: Record<string, unknown>, env: NodeJS.ProcessEnv, configFile: string | undefined): boolean {
  if (flags.servers !== undefined) return true;
  if (env.NATS_SERVERS?.trim() || env.NATS_URL?.trim()) return true;
  if (configFile === undefined) return false;
  try {
    return /^\s*servers\s*=/m.test(readFileSync(configFile, 'utf8'));
  } catch {
    return false;
  }
}

/** A private bus, when one is needed and can be had; `stop` ends it (idempotent). */
export interface PrivateBus {
  url: string;
  stop(): void;
}

export async function privateBusIfNeeded(configured: boolean, env: NodeJS.ProcessEnv, log: Logger): Promise<PrivateBus | undefined> {
  if (configured) {
    log.info('--dev: a bus is configured; no private one is started');
    return undefined;
  }
  if (await answers(HOST, PORT)) {
    log.info({ server: DEFAULT_SERVERS }, '--dev: a bus answers on the default URL; using it');
    return undefined;
  }
  const binary = natsServerBinary(env);
  if (binary === undefined) {
    log.error(
      { server: DEFAULT_SERVERS },
      'no bus answers on the default URL, and nats-server is not installed to start a private one: sudo apt-get install nats-server (or start a bus and pass --servers); waiting for one meanwhile',
    );
    return undefined;
  }
  // In a process group of its own: Ctrl-C in a terminal signals the whole foreground group, and the bus
  // must outlive the daemon's last heartbeat and drain; it is stopped after the daemon closes.
  const child: ChildProcess = spawn(binary, ['-a', HOST, '-p', String(PORT)], { stdio: 'ignore', detached: true });
  child.unref();
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    child.kill('SIGTERM');
  };
  // Whatever ends this process ends the private bus too (but SIGKILL, which nothing can catch).
  process.once('exit', stop);
  child.once('exit', (code, signal) => {
    if (!stopped) log.error({ code, signal }, 'the private bus (nats-server) exited');
  });
  const url = `nats://${HOST}:${PORT}`;
  log.info({ server: url, binary, pid: child.pid }, `started a private bus at ${url} (--dev: nothing answered there and no bus was configured); it stops when the daemon does`);
  return { url, stop };
}

import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { BusConnection } from '../bus/connection.js';
import { formatDuration, parseDuration } from '../config/duration.js';
import { resolveConfig } from '../config/resolve.js';
import { ConfigError } from '../errors.js';
import { askStatus, shownServers } from './ask-status.js';
import { connectOnce } from './connect-once.js';
import { EXIT, type CommandLine } from './command-line.js';
import { printableJson } from './printable.js';
import { statusTable } from './status-table.js';

/** How often `status --watch` redraws, unless `--refresh` says otherwise. */
export const DEFAULT_REFRESH = 1000; // 1 s
const REQUEST_TIMEOUT = 2000; // 2 s

// Terminal control: the alternate screen (restored on exit, like htop), cursor, clear-and-home.
const ALT_SCREEN_ON = '\x1b[?1049h';
const ALT_SCREEN_OFF = '\x1b[?1049l';
const CURSOR_HIDE = '\x1b[?25l';
const CURSOR_SHOW = '\x1b[?25h';
const HOME_CLEAR = '\x1b[H\x1b[2J';

const COLORS: Record<string, string> = {
  healthy: '\x1b[32m',
  degraded: '\x1b[33m',
  suspect: '\x1b[33m',
  unhealthy: '\x1b[31m',
  missing: '\x1b[31m',
  stale: '\x1b[31m',
  unknown: '\x1b[90m',
};

/**
 * `nachos-sentinel status [--watch]`: the health view for people at a
 * terminal. Plain `status` prints it once (exit 0 when a sentinel answered,
 * 1 when none did); `--watch` redraws it in place every `--refresh` until q
 * or Ctrl-C, like `nats top` or htop, and waits out a bus that is away.
 */
export async function status(cli: CommandLine, env: NodeJS.ProcessEnv, cwd: string): Promise<number> {
  const config = resolveConfig({ flags: cli.flags, env, cwd });
  const component = typeof cli.flags.component === 'string' ? cli.flags.component : undefined;
  const refreshMs = typeof cli.flags.refresh === 'string' ? refreshInterval(cli.flags.refresh) : DEFAULT_REFRESH;
  const out = process.stdout;
  const colour = out.isTTY === true && !env.NO_COLOR;
  const paint = colour ? (s: string, text: string) => `${COLORS[s] ?? ''}${text}\x1b[0m` : undefined;

  if (!cli.flags.watch) {
    let nc: NatsConnection;
    try {
      nc = await connectOnce(config, 'nachos-sentinel-status');
    } catch (err) {
      process.stderr.write(`nachos-sentinel status: ${(err as Error).message}\n`);
      return EXIT.FAILURE;
    }
    try {
      const view = await askStatus(nc, { component, timeoutMs: REQUEST_TIMEOUT, servers: config.servers, id: randomUUID() });
      out.write(cli.flags.json ? `${printableJson(view, 2)}\n` : statusTable(view, { component, paint }));
      return EXIT.OK;
    } catch (err) {
      process.stderr.write(`nachos-sentinel status: ${(err as Error).message}\n`);
      return EXIT.FAILURE;
    } finally {
      await nc.close();
    }
  }

  // --watch: one connection kept for the whole session, reconnecting for as long as it takes.
  // The pauses are what keep the process alive while the bus is away: their timers stay referenced.
  let stopped = false;
  let wake: (() => void) | undefined;
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      wake = done;
    });
  const stop = () => {
    stopped = true;
    wake?.();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const bus = new BusConnection({ servers: config.servers, name: 'nachos-sentinel-status', log: pino({ level: 'silent' }), auth: config });
  // Give the first frame a moment to have something to show.
  await Promise.race([bus.start(), pause(REQUEST_TIMEOUT)]);
  wake?.();
  const stdin = process.stdin;
  if (stdin.isTTY) {
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', (key: Buffer) => {
      // q, Q, Esc or Ctrl-C
      if ([0x71, 0x51, 0x1b, 0x03].includes(key[0] ?? 0)) stop();
    });
  }
  out.write(ALT_SCREEN_ON + CURSOR_HIDE);
  try {
    while (!stopped) {
      const now = new Date().toISOString().slice(11, 19);
      const header = `nachos-sentinel status · ${shownServers(config.servers)} · every ${formatDuration(refreshMs)} · ${now} · q to quit\n\n`;
      let body: string;
      if (!bus.nc || !bus.connected) {
        body = `waiting for the bus at ${shownServers(config.servers)}…\n`;
      } else {
        try {
          const view = await askStatus(bus.nc, { component, timeoutMs: REQUEST_TIMEOUT, servers: config.servers, id: randomUUID() });
          body = statusTable(view, { component, paint });
        } catch (err) {
          body = `${(err as Error).message}\nretrying…\n`;
        }
      }
      out.write(HOME_CLEAR + header + body);
      if (!stopped) await pause(refreshMs);
    }
  } finally {
    out.write(CURSOR_SHOW + ALT_SCREEN_OFF);
    if (stdin.isTTY) stdin.setRawMode(false);
    stdin.pause();
    await bus.close(500);
  }
  return EXIT.OK;
}

function refreshInterval(text: string): number {
  try {
    const ms = parseDuration(text);
    if (ms < 100) throw new TypeError('must be at least 100ms');
    return ms;
  } catch (err) {
    throw new ConfigError('--refresh', (err as Error).message);
  }
}

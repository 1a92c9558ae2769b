import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';
import type { LogFormat, LogLevel } from '../config/settings.js';

/**
 * Keys whose values are secrets wherever they appear in a log object. Secrets
 * are kept out of log calls in the first place; this is the second line.
 */
const SECRET_KEYS = ['password', 'pass', 'token', 'seed', 'nkey', 'creds', 'authorization', 'key'];
const REDACT_PATHS = SECRET_KEYS.flatMap((k) => [k, `*.${k}`]);

export interface LoggerOptions {
  level: LogLevel;
  /** `auto`: pretty when stdout is a terminal, JSON lines otherwise. */
  format?: LogFormat;
  component: string;
  instance: string;
  /** Where lines go; stdout by default. Tests pass a stream to read them back. */
  destination?: NodeJS.WritableStream;
}

/** Log lines waiting for stdout at most: past this, lines are dropped and counted, never waited for. */
export const LOG_BUFFER_BYTES = 1024 * 1024; // 1 MiB

/** What the logger could not write. */
export interface LogStats {
  /** Lines dropped because stdout did not take them (a stalled log driver) and the buffer was full. */
  dropped: number;
}

/**
 * pino JSON lines; every line carries `component` and `instance`. Written to
 * stdout asynchronously (pino's SonicBoom destination): a stalled reader (a
 * blocked log driver, a full pipe) never stalls the event loop, heartbeats or
 * /healthz; lines beyond LOG_BUFFER_BYTES are dropped and counted.
 */
export function createLogger(options: LoggerOptions): { log: Logger; stats: LogStats } {
  const stats: LogStats = { dropped: 0 };
  let destination: pino.DestinationStream | NodeJS.WritableStream | undefined = options.destination;
  if (!destination) {
    const boom = pino.destination({ dest: 1, sync: false, maxLength: LOG_BUFFER_BYTES });
    boom.on('drop', () => {
      stats.dropped++;
    });
    const format = options.format ?? 'auto';
    const pretty = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
    // pino's own printer for people, in this process, onto the same bounded asynchronous destination.
    destination = pretty ? prettyStream(boom, process.stdout.isTTY === true) : boom;
  }
  const log = pino(
    {
      level: options.level,
      base: { component: options.component, instance: options.instance },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  return { log, stats };
}

/**
 * pino-pretty, loaded only when asked for: JSON lines are the default off a terminal. One line per
 * event; the objects its message already says in words (a transition, the files changed, checks) are
 * left to the JSON lines.
 */
function prettyStream(destination: pino.DestinationStream, colorize: boolean): NodeJS.WritableStream {
  const build = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
  return build({ destination, colorize, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,transition,changed,checks', singleLine: true, sync: false });
}


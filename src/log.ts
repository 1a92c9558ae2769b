import { pino, type Logger } from 'pino';
import type { LogLevel } from './config/settings.js';

/**
 * Keys whose values are secrets wherever they appear in a log object. Secrets
 * are kept out of log calls in the first place; this is the second line.
 */
const SECRET_KEYS = ['password', 'pass', 'token', 'seed', 'nkey', 'creds', 'authorization', 'key'];
const REDACT_PATHS = SECRET_KEYS.flatMap((k) => [k, `*.${k}`]);

export interface LoggerOptions {
  level: LogLevel;
  component: string;
  instance: string;
  /** Where lines go; stdout by default. Tests pass a stream to read them back. */
  destination?: NodeJS.WritableStream;
}

/** pino JSON lines; every line carries `component` and `instance`. */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { component: options.component, instance: options.instance },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

export { redactUrl } from './bus/url-credentials.js';

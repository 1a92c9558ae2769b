/**
 * The error catalogue: every error this project reports on the bus, in a
 * problem list or as a start-up failure has a stable code here, so logs,
 * messages and tests can rely on it (the habit is fastify's `FST_ERR_*`).
 * Failures told only to the person at a terminal (the probe's, `status`'s)
 * are worded for them and carry none. A test checks the catalogue's shape.
 */
export const ERROR_CODES = {
  // Start-up and command line: exit code 2 (except in `--once` mode, which exits 1).
  USAGE: 'SENTINEL_ERR_USAGE',
  CONFIG: 'SENTINEL_ERR_CONFIG',
  // Answers on the bus.
  NO_SNAPSHOT: 'SENTINEL_ERR_NO_SNAPSHOT',
  // Problems found in a policy snapshot (reported, never thrown).
  POLICY_DIR_MISSING: 'SENTINEL_ERR_POLICY_DIR_MISSING',
  POLICY_EMPTY: 'SENTINEL_ERR_POLICY_EMPTY',
  POLICY_READ: 'SENTINEL_ERR_POLICY_READ',
  POLICY_BAD_NAME: 'SENTINEL_ERR_POLICY_BAD_NAME',
  POLICY_NOT_FILE: 'SENTINEL_ERR_POLICY_NOT_FILE',
  POLICY_OUTSIDE_DIR: 'SENTINEL_ERR_POLICY_OUTSIDE_DIR',
  POLICY_TOO_LARGE: 'SENTINEL_ERR_POLICY_TOO_LARGE',
  POLICY_SYNTAX: 'SENTINEL_ERR_POLICY_SYNTAX',
  POLICY_SCHEMA: 'SENTINEL_ERR_POLICY_SCHEMA',
  POLICY_DUPLICATE_ID: 'SENTINEL_ERR_POLICY_DUPLICATE_ID',
  POLICY_BAD_REGEX: 'SENTINEL_ERR_POLICY_BAD_REGEX',
  POLICY_BAD_VALUE: 'SENTINEL_ERR_POLICY_BAD_VALUE',
  /** A policy file the consumer never reads (Nachos: anything but *.yaml and *.yml): a warning, or an error with strict_consumer. */
  POLICY_NOT_READ: 'SENTINEL_ERR_POLICY_NOT_READ',
  /** A key the policy schema does not know: a warning, or an error with strict_keys. */
  POLICY_UNKNOWN_KEY: 'SENTINEL_ERR_POLICY_UNKNOWN_KEY',
} as const;

export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

/** Base class of the errors with a stable `code`. */
export class SentinelError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A bad flag or argument on the command line. */
export class UsageError extends SentinelError {
  constructor(message: string) {
    super(ERROR_CODES.USAGE, message);
  }
}

/** A bad configuration value; `where` names the flag, variable or file and key. */
export class ConfigError extends SentinelError {
  readonly where: string;
  constructor(where: string, message: string, options?: { cause?: unknown }) {
    super(ERROR_CODES.CONFIG, `${where}: ${message}`, options);
    this.where = where;
  }
}

/** Every problem of a configuration at once (a config file with two mistakes names both), or the one. */
export function allConfigErrors(errors: readonly ConfigError[]): ConfigError | undefined {
  if (errors.length <= 1) return errors[0];
  return new ConfigError('configuration', `${errors.length} problems:\n${errors.map((e) => `  ${e.message}`).join('\n')}`);
}

/**
 * One problem found in a policy snapshot. Validation collects all of them
 * rather than stopping at the first, so an operator fixes a file in one pass.
 */
export interface Problem {
  code: ErrorCode;
  /** Path relative to the policy directory ("" for the directory itself). */
  file: string;
  /** 1-based line and column, where known. */
  line?: number;
  column?: number;
  /** The rule the problem is in, where there is one. */
  ruleId?: string;
  /** JSON-pointer-like path to the value inside the file, e.g. `/rules/2/match/action`. */
  path?: string;
  message: string;
}

/** `file:line:col: [warning: ]message [rule id]`, the form editors and CI logs understand. */
export function formatProblem(problem: Problem, severity: 'error' | 'warning' = 'error'): string {
  let where = problem.file || '.';
  if (problem.line !== undefined) {
    where += `:${problem.line}`;
    if (problem.column !== undefined) where += `:${problem.column}`;
  }
  const rule = problem.ruleId !== undefined ? ` (rule "${problem.ruleId}")` : '';
  return `${where}: ${severity === 'warning' ? 'warning: ' : ''}${problem.message}${rule}`;
}

/** The message of any thrown value, without assuming it is an Error. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { SETTINGS, type Setting } from '../config/settings.js';
import { closest } from '../text/did-you-mean.js';
import { UsageError } from '../errors.js';

export { EXIT } from './exit-codes.js';

export const COMMANDS = {
  run: 'run the daemon (the default)',
  validate: 'check a policy directory offline; exit 0 when valid, 1 when not',
  status: 'print the health view once (--component NAME: that component only); with --watch, redraw it in place until q',
  schema: 'print the JSON Schema of policy files or of the config file (schema policy|config)',
  verify: 'judge a reload message (JSON, from FILE or stdin) as a sidecar would: the signing keys, deployment, freshness',
  keygen: 'write a new signing seed (--out FILE, default nachos-sentinel.nk; mode 600, never over a file) and print its public key',
  pubkey: 'print the public key of the seed in FILE',
  sidecar: 'run beside one container: its health on the bus (--check), verified policies delivered to it (--deliver-to)',
  history: 'list the policy history, newest first (--limit N, --json); history show REVISION; history diff A B (a unified diff of the files)',
  rollback: 'put an earlier set back in force (REVISION: an entry number or 7+ hex digits; --reason TEXT), until the directory changes; --release ends it',
  rollout: 'rollout status [--wait] [--timeout DURATION]: exit 0 complete, 1 failed, 3 not yet; rollout promote|abort [--reason TEXT]: decide a canary by hand',
} as const;
export type Command = keyof typeof COMMANDS;

type OptionSpec = NonNullable<ParseArgsConfig['options']>[string];

/** Flags that are not settings. */
export const COMMON_FLAGS: Record<string, OptionSpec & { help: string; value?: string }> = {
  config: { type: 'string', help: 'TOML config file (env SENTINEL_CONFIG)', value: 'FILE' },
  json: { type: 'boolean', help: 'validate, status: print one JSON document instead of text' },
  watch: { type: 'boolean', help: 'status: redraw in place, like nats top' },
  refresh: { type: 'string', help: 'status --watch: redraw this often (default 1s)', value: 'DURATION' },
  current: { type: 'boolean', help: 'verify: judge the set in force, asked on the bus (nachos.system.policy.current), instead of a file' },
  dev: { type: 'boolean', help: 'run (what npm start runs): with no bus configured and none on nats://127.0.0.1:4222, start a private nats-server there, stopped on exit' },
  out: { type: 'string', help: 'keygen: the file to write the new seed to (default nachos-sentinel.nk)', value: 'FILE' },
  limit: { type: 'string', help: 'history: how many entries to list (default 20)', value: 'N' },
  reason: { type: 'string', help: 'rollback, rollout promote|abort: why, in the history and the log', value: 'TEXT' },
  release: { type: 'boolean', help: 'rollback: end the rollback in force; the directory\'s set is in force again' },
  wait: { type: 'boolean', help: 'rollout status: wait until the rollout is complete or failed, showing its progress' },
  timeout: { type: 'string', help: 'rollout status --wait: give up after this long (exit 3)', value: 'DURATION' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
  version: { type: 'boolean', short: 'v', help: 'print the version' },
};

export interface CommandLine {
  command: Command;
  flags: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
}

/** Parses argv (without node and the script). Throws UsageError for anything it does not know. */
export function parseCommandLine(argv: string[], settings: readonly Setting[] = SETTINGS): CommandLine {
  const options: Record<string, OptionSpec> = {};
  for (const [name, spec] of Object.entries(COMMON_FLAGS)) {
    options[name] = { type: spec.type, ...(spec.short ? { short: spec.short } : {}) } as OptionSpec;
  }
  for (const s of settings) if (s.flag) options[s.flag] = { type: s.flagType, multiple: s.multiple ?? false };

  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(rephrase(err as Error & { code?: string }, Object.keys(options)));
  }
  const [first, ...rest] = parsed.positionals;
  let command: Command = 'run';
  let positionals = parsed.positionals;
  if (first !== undefined && first in COMMANDS) {
    command = first as Command;
    positionals = rest;
  } else if (first !== undefined) {
    throw new UsageError(`unknown command "${first}"; commands: ${Object.keys(COMMANDS).join(', ')}`);
  }
  if ((command === 'run' || command === 'status' || command === 'sidecar') && positionals.length > 0) {
    throw new UsageError(`unexpected argument "${positionals[0]}"`);
  }
  if (command === 'validate' && positionals.length > 1) throw new UsageError('validate takes at most one directory');
  if (command === 'schema' && positionals.length !== 1) throw new UsageError('schema takes one name: policy or config');
  if (command === 'verify' && positionals.length > 1) throw new UsageError('verify takes at most one file');
  if (command === 'keygen' && positionals.length > 0) throw new UsageError('keygen takes no argument; the file is --out FILE (default nachos-sentinel.nk)');
  if (command === 'pubkey' && positionals.length !== 1) throw new UsageError('pubkey takes one file: the seed whose public key to print');
  if (command === 'history') checkHistoryArguments(positionals);
  if (command === 'rollback' && positionals.length > 1) throw new UsageError('rollback takes one REVISION');
  if (command === 'rollout') {
    const [sub, ...more] = positionals;
    if (sub === undefined || !['status', 'promote', 'abort'].includes(sub)) throw new UsageError(`rollout takes status, promote or abort${sub ? ` (not "${sub}")` : ''}`);
    if (more.length > 0) throw new UsageError(`unexpected argument "${more[0] ?? ''}"`);
  }
  return { command, flags: parsed.values as CommandLine['flags'], positionals };
}

function checkHistoryArguments(positionals: string[]): void {
  const [sub, ...refs] = positionals;
  if (sub === undefined) return;
  if (sub === 'show' && refs.length === 1) return;
  if (sub === 'diff' && refs.length === 2) return;
  if (sub === 'show') throw new UsageError('history show takes one REVISION (an entry number, or 7+ hex digits of a revision)');
  if (sub === 'diff') throw new UsageError('history diff takes two REVISIONs: A B');
  throw new UsageError(`history takes nothing, show REVISION, or diff A B (not "${sub}")`);
}

/** Node's messages are long and generic; say what is wrong and what would be right. */
function rephrase(err: Error & { code?: string }, known: string[]): string {
  const flag = /'(-{1,2}[^' ]+)/.exec(err.message)?.[1];
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const name = flag?.replace(/^-+/, '') ?? '';
      const close = closest(name, known);
      return `unknown flag ${flag ?? ''}${close ? ` (did you mean --${close}?)` : ''}; see --help`;
    }
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return err.message.includes('argument missing') ? `flag ${flag ?? ''} needs a value` : `flag ${flag ?? ''} takes no value`;
    default:
      return err.message;
  }
}

/**
 * The settings table as the sidecar reads it: the same entries, but the HTTP
 * listener is off unless asked for (one per container: no port by default),
 * and the component has no default (it is the neighbour's name).
 */
export const SIDECAR_SETTINGS: readonly Setting[] = SETTINGS.map((s): Setting => {
  if (s.key === 'http') return { ...s, defaultText: 'off' };
  if (s.key === 'component') return { ...s, defaultText: '', parse: (raw) => (raw === '' ? '' : s.parse(raw)) } as Setting;
  return s;
});

/** What a sidecar reads of the table: the rest is the central sentinel's (policies, aggregation, signing). */
export const SIDECAR_KEYS: ReadonlySet<string> = new Set([
  'servers', 'component', 'healthIntervalMs', 'checks', 'http', 'httpAllowedHosts', 'logLevel', 'logFormat',
  'user', 'password', 'token', 'nkey', 'creds', 'tlsCa', 'tlsCert', 'tlsKey',
  'sidecarChecks', 'deliverTo', 'takeOver', 'publicKeys', 'deployment', 'maxClockSkewMs', 'consumer',
  'reloadUrl', 'reloadHeaders', 'reloadCommand', 'reloadTimeoutMs', 'healthSeed', 'historyStore', 'historyStream',
]);

/** `nachos-sentinel sidecar --help`: the sidecar's own flags, not the whole daemon's. */
export function sidecarHelpText(version: string, settings: readonly Setting[] = SIDECAR_SETTINGS): string {
  const rows = settingRows(settings.filter((s) => SIDECAR_KEYS.has(s.key)));
  const width = Math.max(...rows.map(([flag]) => flag.length)) + 2;
  return [
    `nachos-sentinel ${version} sidecar: one beside each container, its health on the bus and verified policies delivered to it`,
    '',
    'Usage:',
    '  nachos-sentinel sidecar --component NAME [--check [NAME=]URL] [--deliver-to DIR --public-key KEY] [flags]',
    '',
    'Flags (flags > environment > config file > defaults):',
    `  ${'--config FILE'.padEnd(width)}TOML config file (env SENTINEL_CONFIG)`,
    ...rows.map(([flag, text]) => `  ${flag.padEnd(width)}${text}`),
    `  ${'-h, --help'.padEnd(width)}show this help`,
    `  ${'-v, --version'.padEnd(width)}print the version`,
    '',
    'Exit codes: 0 stopped cleanly, 2 a bad flag or configuration (nothing to do, no --component,',
    'a delivery directory holding files the sidecar did not write without --take-over).',
    '',
  ].join('\n');
}

function settingRows(settings: readonly Setting[]): [string, string][] {
  return settings
    .filter((s) => s.flag)
    .map((s) => {
      const value = s.flagType === 'string' ? ` ${s.key === 'servers' ? 'URLS' : 'VALUE'}` : '';
      const env = s.env.length > 0 ? `; env ${s.env.join(', ')}` : '';
      const def = s.defaultText ? `; default ${s.defaultText}` : '';
      return [`--${s.flag}${value}`, `${s.help} (config ${s.file}${env}${def})`];
    });
}

/** The help text, built from the same table as the flags, so it cannot drift. */
export function helpText(version: string, settings: readonly Setting[] = SETTINGS): string {
  const rows: [string, string][] = [];
  for (const [name, spec] of Object.entries(COMMON_FLAGS)) {
    const short = spec.short ? `-${spec.short}, ` : '';
    rows.push([`${short}--${name}${spec.value ? ` ${spec.value}` : ''}`, spec.help]);
  }
  rows.push(...settingRows(settings));
  const width = Math.max(...rows.map(([flag]) => flag.length)) + 2;
  const commands = Object.entries(COMMANDS).map(([name, text]) => `  ${name.padEnd(width - 2)}${text}`);
  return [
    `nachos-sentinel ${version}: policy reloads and health for the Nachos bus`,
    '',
    'Usage:',
    '  nachos-sentinel [run] [flags]',
    '  nachos-sentinel validate [DIR] [flags]',
    '  nachos-sentinel status [--watch] [--component NAME] [--json]',
    '  nachos-sentinel schema policy|config',
    '  nachos-sentinel verify --public-key KEY [--deployment NAME] [FILE | --current]',
    '  nachos-sentinel keygen [--out FILE] | pubkey FILE',
    '  nachos-sentinel sidecar --component NAME [--check URL] [--deliver-to DIR] [--public-key KEY]',
    '  nachos-sentinel --once [--self] [--component NAME] [--strict] [--json] [--timeout 2s]   (see --once --help)',
    '',
    'Commands:',
    ...commands,
    '',
    'Flags (flags > environment > config file > defaults):',
    ...rows.map(([flag, text]) => `  ${flag.padEnd(width)}${text}`),
    '',
    'Exit codes: 0 ok, 1 failure (validate: invalid policies), 2 bad flag or configuration;',
    'with --once: 0 healthy (or degraded without --strict), 1 anything else, a bad flag included.',
    '',
  ].join('\n');
}

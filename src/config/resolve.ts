import { readFileSync } from 'node:fs';
import path from 'node:path';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { parse as parseToml, TomlError } from 'smol-toml';
import { authProblem } from '../bus/auth.js';
import { ConfigError, messageOf } from '../errors.js';
import { schemaIssues } from '../schema-errors.js';
import { keyPositions, locate, pointerToPath } from '../toml-positions.js';
import { configFileSchema, SETTINGS, type SentinelConfig, type Setting } from './settings.js';

/** Environment variable naming the config file, when `--config` is not given. */
export const CONFIG_ENV = 'SENTINEL_CONFIG';

export interface ResolveInput {
  /** Values from the command line, keyed by flag name (as `util.parseArgs` returns them). */
  flags: Record<string, string | boolean | (string | boolean)[] | undefined>;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/**
 * Resolves the configuration: flags > environment > config file > defaults.
 * Every bad value is a ConfigError naming where it came from (the flag, the
 * variable, or the file, line and key), raised before anything connects.
 */
export function resolveConfig(input: ResolveInput, settings: readonly Setting[] = SETTINGS): SentinelConfig {
  const configFile = pickString(input.flags.config) ?? nonEmpty(input.env[CONFIG_ENV]);
  const file = configFile === undefined ? undefined : readConfigFile(path.resolve(input.cwd, configFile), settings);

  const config: Record<string, unknown> = { configFile: file?.path };
  for (const s of settings) {
    const found = pick(s, input, file);
    let value: unknown;
    try {
      value = s.parse(found.raw);
    } catch (err) {
      throw new ConfigError(found.where, `${found.key ?? ''}${messageOf(err)}`);
    }
    if (s.isPath && value !== undefined) {
      const base = found.from === 'file' && file ? path.dirname(file.path) : input.cwd;
      value = Array.isArray(value) ? value.map((p: string) => path.resolve(base, p)) : path.resolve(base, value as string);
    }
    config[s.key] = value;
  }
  const resolved = config as unknown as SentinelConfig;
  const problem = authProblem(resolved);
  if (problem) throw new ConfigError('authentication', problem);
  return resolved;
}

interface ConfigFile {
  path: string;
  values: Record<string, unknown>;
  positions: ReturnType<typeof keyPositions>;
}

/** Where a value came from; `key` prefixes messages about values from the config file. */
type Found = { raw: unknown; where: string; key?: string; from: 'flag' | 'env' | 'file' | 'default' };

function pick(s: Setting, input: ResolveInput, file: ConfigFile | undefined): Found {
  const flag = s.flag === undefined ? undefined : input.flags[s.flag];
  if (flag !== undefined && !(Array.isArray(flag) && flag.length === 0)) {
    return { raw: flag, where: `--${s.flag}`, from: 'flag' };
  }
  for (const name of s.env) {
    const value = nonEmpty(input.env[name]);
    if (value !== undefined) return { raw: value, where: `environment variable ${name}`, from: 'env' };
  }
  if (file) {
    const keys = s.file.split('.');
    const value = keys.reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], file.values);
    if (value !== undefined) {
      return { raw: value, where: whereInFile(file, keys), key: `key "${s.file}": `, from: 'file' };
    }
  }
  return { raw: s.defaultText, where: `default of ${s.file}`, from: 'default' };
}

function readConfigFile(file: string, settings: readonly Setting[]): ConfigFile {
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(file, code === 'ENOENT' ? 'config file not found' : `cannot read config file: ${messageOf(err)}`);
  }
  let values: Record<string, unknown>;
  try {
    values = parseToml(source) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof TomlError) {
      const message = (err.message.split('\n')[0] ?? '').replace(/^Invalid TOML document: /, '');
      throw new ConfigError(`${file}:${err.line}:${err.column}`, `TOML syntax: ${message}`);
    }
    throw new ConfigError(file, `cannot parse config file: ${messageOf(err)}`);
  }
  const positions = keyPositions(source);
  const check = TypeCompiler.Compile(configFileSchema(settings));
  const issue = schemaIssues(check, values)[0];
  if (issue) {
    const path = pointerToPath(issue.path);
    const keys = path.map(String);
    // `health.checks[0].url`, as a person writes a key of a TOML array of tables.
    const named = (p: (string | number)[]) => p.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');
    const message = /^unknown /.test(issue.message)
      ? issue.message
      : /^missing /.test(issue.message)
        ? `${path.length > 1 ? `key "${named(path.slice(0, -1))}": ` : ''}${issue.message}`
        : `key "${named(path)}": ${issue.message}`;
    throw new ConfigError(whereInFile({ path: file, values, positions }, keys), message);
  }
  return { path: file, values, positions };
}

/** `/etc/sentinel.toml:4:1`, the line of the key where it can be found. */
function whereInFile(file: ConfigFile, keys: string[]): string {
  const at = locate(file.positions, keys);
  return at ? `${file.path}:${at.line}:${at.column}` : file.path;
}

function pickString(value: unknown): string | undefined {
  return typeof value === 'string' ? nonEmpty(value) : undefined;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

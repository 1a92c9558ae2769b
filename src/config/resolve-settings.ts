import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { allConfigErrors, ConfigError, messageOf } from '../errors.js';
import type { SettingSpec } from './shared-settings.js';

/**
 * The one resolution every command uses: flags > environment > config file >
 * defaults, each bad value a ConfigError naming where it came from (the flag,
 * the variable, or the file, line and key). Light on purpose, as the table it
 * reads: the TOML parser and its key locator are handed in, so that the probe
 * loads them only when a config file is named.
 */

/** Environment variable naming the config file, when `--config` is not given. */
export const CONFIG_ENV = 'SENTINEL_CONFIG';

export interface ResolveInput {
  /** Values from the command line, keyed by flag name (as `util.parseArgs` returns them). */
  flags: Record<string, string | boolean | (string | boolean)[] | undefined>;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/** A config file, read and parsed. */
export interface ConfigFile {
  /** Absolute. */
  path: string;
  values: Record<string, unknown>;
  /** Where a key is written (text/toml-positions.ts), asked only to report a bad value. */
  locate: (keys: readonly (string | number)[]) => { line: number; column: number } | undefined;
}

/** What reads TOML: smol-toml's parser, and a locator of keys in the text (text/toml-positions.ts). */
export interface TomlReader {
  parse: (text: string) => unknown;
  locator: (source: string) => (keys: readonly (string | number)[]) => { line: number; column: number } | undefined;
}

/** What a table of settings resolves to: each key, its parsed value. */
export type Resolved<S extends readonly SettingSpec[]> = { [E in S[number] as E['key']]: ReturnType<E['parse']> };

/** The config file the command line or the environment names (`--config`, SENTINEL_CONFIG), absolute. */
export function configFileNamed(input: ResolveInput): string | undefined {
  const named = pickString(input.flags.config) ?? nonEmpty(input.env[CONFIG_ENV]);
  return named === undefined ? undefined : resolve(input.cwd, named);
}

/**
 * Reads and parses a config file; a ConfigError naming the file (and the line
 * and column of a syntax error) when it cannot.
 */
export function readConfigFile(file: string, toml: TomlReader): ConfigFile {
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(file, code === 'ENOENT' ? 'config file not found' : `cannot read config file: ${messageOf(err)}`);
  }
  try {
    const values = toml.parse(source) as Record<string, unknown>;
    let locate: ReturnType<TomlReader['locator']> | undefined;
    return { path: file, values, locate: (keys) => (locate ??= toml.locator(source))(keys) };
  } catch (err) {
    const syntax = tomlSyntax(err);
    if (syntax) throw new ConfigError(`${file}:${syntax.line}:${syntax.column}`, `TOML syntax: ${syntax.message}`);
    throw new ConfigError(file, `cannot parse config file: ${messageOf(err)}`);
  }
}

/**
 * A TOML syntax error (smol-toml's TomlError, told by its line and column),
 * its message cut to the first line, without smol-toml's prefix.
 */
export function tomlSyntax(err: unknown): { line: number; column: number; message: string } | undefined {
  const { line, column, message } = (err ?? {}) as { line?: unknown; column?: unknown; message?: unknown };
  if (typeof line !== 'number' || typeof column !== 'number' || typeof message !== 'string') return undefined;
  return { line, column, message: (message.split('\n')[0] ?? '').replace(/^Invalid TOML document: /, '') };
}

/** Resolves each setting of the table; paths from the config file are relative to it. */
export function resolveSettings<S extends readonly SettingSpec[]>(settings: S, input: ResolveInput, file: ConfigFile | undefined): Resolved<S> {
  const resolved: Record<string, unknown> = {};
  const errors: ConfigError[] = [];
  for (const s of settings) {
    const found = pick(s, input, file);
    let value: unknown;
    try {
      value = s.parse(found.raw);
    } catch (err) {
      errors.push(new ConfigError(found.where(), `${found.key ?? ''}${messageOf(err)}`));
      continue;
    }
    if (s.isPath && value !== undefined) {
      const base = found.from === 'file' && file ? dirname(file.path) : input.cwd;
      value = Array.isArray(value) ? value.map((p: string) => resolve(base, p)) : resolve(base, value as string);
    }
    resolved[s.key] = value;
  }
  const error = allConfigErrors(errors);
  if (error) throw error;
  return resolved as Resolved<S>;
}

/** Where a value came from (said only when it is bad); `key` prefixes messages about values from the config file. */
type Found = { raw: unknown; where: () => string; key?: string; from: 'flag' | 'env' | 'file' | 'default' };

function pick(s: SettingSpec, input: ResolveInput, file: ConfigFile | undefined): Found {
  const flag = s.flag === undefined ? undefined : input.flags[s.flag];
  if (flag !== undefined && !(Array.isArray(flag) && flag.length === 0)) {
    return { raw: flag, where: () => `--${s.flag}`, from: 'flag' };
  }
  for (const name of s.env) {
    const value = nonEmpty(input.env[name]);
    if (value !== undefined) return { raw: value, where: () => `environment variable ${name}`, from: 'env' };
  }
  if (file) {
    const keys = s.file.split('.');
    const value = keys.reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], file.values);
    if (value !== undefined) {
      return { raw: value, where: () => whereInFile(file, keys), key: `key "${s.file}": `, from: 'file' };
    }
  }
  return { raw: s.defaultText, where: () => `default of ${s.file}`, from: 'default' };
}

/** `/etc/sentinel.toml:4:1`, the line of the key where it can be found. */
export function whereInFile(file: ConfigFile, keys: readonly (string | number)[]): string {
  const at = file.locate(keys);
  return at ? `${file.path}:${at.line}:${at.column}` : file.path;
}

function pickString(value: unknown): string | undefined {
  return typeof value === 'string' ? nonEmpty(value) : undefined;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

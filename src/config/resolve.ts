import { TypeCompiler } from '@sinclair/typebox/compiler';
import { parse as parseToml } from 'smol-toml';
import { allConfigErrors, ConfigError } from '../errors.js';
import { schemaIssues } from '../text/schema-issues.js';
import { pointerToPath, tomlLocator } from '../text/toml-positions.js';
import { authProblem } from './auth-settings.js';
import { configFileNamed, readConfigFile, resolveSettings, whereInFile, type ConfigFile, type ResolveInput } from './resolve-settings.js';
import { configFileSchema, SETTINGS, type SentinelConfig, type Setting } from './settings.js';

/**
 * The daemon's (and `status`'s, `validate`'s) configuration: the shared
 * resolution over the whole settings table, the config file checked against
 * its schema first (an unknown key or a wrong type names the key), and the
 * authentication settings checked together. Raised before anything connects.
 */
export function resolveConfig(input: ResolveInput, settings: readonly Setting[] = SETTINGS): SentinelConfig {
  const named = configFileNamed(input);
  const file = named === undefined ? undefined : checkedConfigFile(named, settings);
  const resolved = { ...resolveSettings(settings, input, file), configFile: file?.path } as unknown as SentinelConfig;
  const problem = authProblem(resolved);
  if (problem) throw new ConfigError('authentication', problem);
  return resolved;
}

function checkedConfigFile(path: string, settings: readonly Setting[]): ConfigFile {
  const file = readConfigFile(path, { parse: parseToml, locator: tomlLocator });
  const check = TypeCompiler.Compile(configFileSchema(settings));
  // Every mistake at once: fixing a file one error at a time is a loop of restarts.
  const errors = schemaIssues(check, file.values).map((issue) => {
    const keys = pointerToPath(issue.path);
    // `health.checks[0].url`, as a person writes a key of a TOML array of tables.
    const named = (p: (string | number)[]) => p.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');
    const message = /^unknown /.test(issue.message)
      ? issue.message
      : /^missing /.test(issue.message)
        ? `${keys.length > 1 ? `key "${named(keys.slice(0, -1))}": ` : ''}${issue.message}`
        : `key "${named(keys)}": ${issue.message}`;
    return new ConfigError(whereInFile(file, keys.map(String)), message);
  });
  const line = (e: ConfigError) => Number(/:(\d+):\d+$/.exec(e.where)?.[1] ?? 0);
  const error = allConfigErrors(errors.sort((a, b) => line(a) - line(b)));
  if (error) throw error;
  return file;
}

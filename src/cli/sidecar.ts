import { authMethod } from '../bus/auth.js';
import { redactUrl } from '../bus/url-credentials.js';
import { shownUrl } from '../text/shown-url.js';
import { resolveConfig } from '../config/resolve.js';
import { ConfigError } from '../errors.js';
import { nameChecks } from '../health/check-specs.js';
import { makeInstanceId } from '../health/instance-id.js';
import { createLogger } from '../log/logger.js';
import { Sidecar } from '../roles/sidecar.js';
import { SIDECAR_SETTINGS, type CommandLine } from './command-line.js';
import { runUntilSignalled } from './lifecycle.js';
import { packageVersion } from './version.js';

/**
 * `nachos-sentinel sidecar --component NAME`: the sidecar role, run until a
 * signal. A bad value exits 2 before anything connects.
 */
export { SIDECAR_SETTINGS };

export async function sidecar(cli: CommandLine, env: NodeJS.ProcessEnv, cwd: string): Promise<number> {
  const config = resolveConfig({ flags: cli.flags, env, cwd }, SIDECAR_SETTINGS);
  if (config.component === '') {
    throw new ConfigError('--component', 'a sidecar needs the name of the component it reports for (--component NAME, SENTINEL_COMPONENT, or component in [health])');
  }
  if (config.sidecarChecks.length + config.checks.length === 0 && config.deliverTo === undefined) {
    throw new ConfigError('sidecar', 'nothing to do: give --check URL (the neighbour\'s health), --deliver-to DIR (its policies), or both');
  }
  const instance = makeInstanceId();
  const { log } = createLogger({ level: config.logLevel, format: config.logFormat, component: config.component, instance });
  log.info(
    {
      version: packageVersion(),
      role: 'sidecar',
      servers: config.servers.map(redactUrl),
      checks: nameChecks([...config.checks, ...config.sidecarChecks], config.component).map((c) => c.name),
      deliverTo: config.deliverTo ?? null,
      signed: config.publicKeys.length > 0,
      deployment: config.deployment,
      reloadUrl: config.reloadUrl === undefined ? null : shownUrl(config.reloadUrl),
      reloadHeaders: Object.keys(config.reloadHeaders),
      reloadCommand: config.reloadCommand !== undefined,
      configFile: config.configFile ?? null,
      auth: authMethod(config, config.servers),
    },
    'starting nachos-sentinel sidecar',
  );
  if (config.deliverTo !== undefined && config.publicKeys.length === 0) {
    log.warn('delivering unsigned reloads: anyone who may publish on nachos.system.policy.reload can change these policies; give --public-key');
  }
  return runUntilSignalled(new Sidecar(config, { log, instance, version: packageVersion() }), log);
}

import { authMethod } from '../bus/auth.js';
import { resolveConfig } from '../config/resolve.js';
import { makeInstanceId } from '../health/instance-id.js';
import { redactUrl } from '../bus/url-credentials.js';
import { createLogger } from '../log/logger.js';
import { Sentinel } from '../roles/sentinel.js';
import { packageVersion } from './version.js';
import { EXIT, type CommandLine } from './command-line.js';

/**
 * From SIGTERM to exit: everything is drained and closed within this, and
 * the process exits at it whatever is still pending, half a second inside
 * the 2 s that Docker, Kubernetes and the README promise.
 */
export const SHUTDOWN_DEADLINE = 1500; // 1.5 s

/**
 * The daemon's composition root: resolve the configuration (a bad value exits
 * 2 before anything connects), build the sentinel, run it until a signal.
 */
export async function run(cli: CommandLine, env: NodeJS.ProcessEnv, cwd: string): Promise<number> {
  const config = resolveConfig({ flags: cli.flags, env, cwd });
  const instance = makeInstanceId();
  const { log, stats: logStats } = createLogger({ level: config.logLevel, format: config.logFormat, component: config.component, instance });
  log.info(
    {
      version: packageVersion(),
      servers: config.servers.map(redactUrl),
      policies: config.policies,
      watch: config.watch,
      configFile: config.configFile ?? null,
      auth: authMethod(config, config.servers),
      tls: config.tlsCa || config.tlsCert ? { ca: config.tlsCa ?? null, cert: config.tlsCert ?? null } : null,
    },
    'starting nachos-sentinel',
  );

  const stopped = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  const sentinel = new Sentinel(config, { log, instance, logStats, version: packageVersion() });
  // SIGHUP, as for Prometheus and consul-template, reads the policy set again at once (what a watcher
  // on a network filesystem missed); the process stays up. Registered before start: its default kills.
  const reread = () => {
    log.info({ signal: 'SIGHUP' }, 'reading the policy set again');
    void sentinel.reloader.apply({ trigger: 'signal', events: 0 });
  };
  process.on('SIGHUP', reread);
  await sentinel.start();

  const signal = await stopped;
  process.off('SIGHUP', reread);
  process.on('SIGHUP', () => undefined);
  log.info({ signal }, 'shutting down');
  // A second signal, or the deadline, ends the process whatever is still pending.
  const force = () => process.exit(EXIT.OK);
  process.once('SIGTERM', force);
  process.once('SIGINT', force);
  setTimeout(force, SHUTDOWN_DEADLINE).unref();

  await sentinel.close(SHUTDOWN_DEADLINE - 300);
  log.info('stopped');
  log.flush();
  return EXIT.OK;
}

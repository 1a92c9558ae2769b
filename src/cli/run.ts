import { authMethod } from '../bus/auth.js';
import { leanUntilAnnounced } from './start-up-memory.js';
import { resolveConfig } from '../config/resolve.js';
import { makeInstanceId } from '../health/instance-id.js';
import { redactUrl } from '../bus/url-credentials.js';
import { createLogger } from '../log/logger.js';
import { Sentinel } from '../roles/sentinel.js';
import { packageVersion } from './version.js';
import type { CommandLine } from './command-line.js';
import { runUntilSignalled } from './lifecycle.js';
import { privateBusIfNeeded, serversConfigured } from './private-bus.js';

/**
 * `nachos-sentinel [run]`: resolve the configuration (a bad value exits
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

  // `npm start` (--dev): a machine with no bus gets a private one, unless a bus was named.
  const bus = cli.flags.dev === true ? await privateBusIfNeeded(serversConfigured(cli.flags, env, config.configFile), env, log) : undefined;
  const sentinel = new Sentinel(config, { log, instance, logStats, version: packageVersion() });
  leanUntilAnnounced(sentinel.announcer, () => sentinel.monitor.counters.received);
  const role = {
    start: () => sentinel.start(),
    close: async (timeoutMs: number) => {
      await sentinel.close(timeoutMs);
      bus?.stop();
    },
  };
  // SIGHUP, as for Prometheus and consul-template, reads the policy set again at once (what a watcher
  // on a network filesystem missed); the process stays up.
  return runUntilSignalled(role, log, () => {
    log.info({ signal: 'SIGHUP' }, 'reading the policy set again');
    void sentinel.reloader.apply({ trigger: 'signal', events: 0 });
  });
}

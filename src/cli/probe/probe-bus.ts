import { authMethod, authOptions, isAuthError } from '../../bus/auth.js';
import { authProblem } from '../../config/auth-settings.js';
import { askStatus, probedReason, probedStatus, shownServers } from '../ask-status.js';
import { requireWithCodeCache, writeCodeCache } from './code-cache.js';
import { EXIT } from '../exit-codes.js';
import { print, ProbeError, type ProbeOptions } from './probe-output.js';
import { printableJson } from '../printable.js';
import { statusTable } from '../status-table.js';

/**
 * The probe over the bus: asks `nachos.system.health.status` and prints the
 * answer. Bundled on its own (dist/cli/probe-bus.cjs), away from `--self`.
 */

/**
 * The NATS client. The compiled probe is a CommonJS bundle (dist/cli/once.cjs)
 * beside a pre-bundled copy of the client (nats-client.cjs) and its V8 code
 * cache, which load in about a third of the time of the package's many
 * modules; run from source, it is the package itself.
 */
async function natsClient(): Promise<typeof import('./nats-client.js')> {
  if (typeof __dirname !== 'string') return import('@nats-io/transport-node');
  const file = `${__dirname}/nats-client.cjs`;
  // Node 22+: the compile cache bin.cjs enabled does this natively; Node 20: the cache written at build time.
  const native = typeof (require('node:module') as { enableCompileCache?: unknown }).enableCompileCache === 'function';
  return native ? (require(file) as typeof import('./nats-client.js')) : requireWithCodeCache(file);
}

/** Build step: the code cache of the client bundle (see code-cache.ts). */
export function writeNatsClientCache(dir: string): number {
  return writeCodeCache(`${dir}/nats-client.cjs`);
}

/** Asks the sentinel on the bus. */
export async function probeBus(options: ProbeOptions): Promise<number> {
  const problem = authProblem(options.auth);
  if (problem) throw new ProbeError(problem);
  const client = await natsClient();
  let nc;
  try {
    nc = await client.connect({
      ...authOptions(options.servers, options.auth, client),
      name: 'nachos-sentinel-probe',
      reconnect: false,
      timeout: options.timeoutMs,
    });
  } catch (err) {
    const where = shownServers(options.servers);
    const method = authMethod(options.auth, options.servers);
    if (!isAuthError(err)) throw new ProbeError(`bus unreachable at ${where}: ${(err as Error).message}`);
    throw new ProbeError(
      method === 'none'
        ? `the bus at ${where} wants credentials, and none were given: --user and --password, --token, --nkey, --creds (or NATS_USER, NATS_PASSWORD, NATS_TOKEN, NATS_NKEY, NATS_CREDS, or [auth] in --config)`
        : `the bus at ${where} refused the credentials (${(err as Error).message}); check the ${method}`,
    );
  }
  try {
    const view = await askStatus(nc, { ...options, id: client.nuid.next(), waitOutGrace: true });
    const status = probedStatus(view, options.component);
    const ok = status === 'healthy' || (status === 'degraded' && !options.strict);
    // `status` is what was probed (the component's, with --component); the overall one stays in `overall`.
    // So is `reason`: the component's own, the system's staying in `overallReason`.
    const reason = probedReason(view, options.component);
    if (options.json) print(1, `${printableJson({ ...view, ok, probed: options.component ?? null, overall: view.status, overallReason: view.reason, status, reason })}\n`);
    else print(1, statusTable(view, { component: options.component }));
    return ok ? EXIT.OK : EXIT.FAILURE;
  } finally {
    await nc.close().catch(() => undefined);
  }
}


import { authMethod, authOptions, isAuthError } from '../../bus/auth.js';
import { authProblem } from '../../config/auth-settings.js';
import { askStatus, probedReason, probedStatus, shownServers, type StatusRequester } from '../ask-status.js';
import type { HealthStatusPayload } from '../../health/status-payload.js';
import { wireConnect } from './wire.js';
import { EXIT } from '../exit-codes.js';
import { print, ProbeError, type ProbeOptions } from './probe-output.js';
import { printableJson } from '../printable.js';
import { statusTable } from '../status-table.js';

/**
 * The probe over the bus: asks `nachos.system.health.status` and prints the
 * answer. Bundled on its own (dist/cli/probe-bus.cjs), away from `--self`.
 */

/**
 * The NATS client: only for `probeView(options, 'client')`, which the suite
 * runs beside the probe's own protocol path to compare their answers.
 */
function natsClient(): Promise<typeof import('@nats-io/transport-node')> {
  return import('@nats-io/transport-node');
}

/** The way to the bus: the probe's own protocol path (the default), or the NATS client. */
export type ProbeVia = 'wire' | 'client';

/** Never called: the wire path signs the nonce itself, from the key file. */
const NO_AUTHENTICATORS = {
  nkeyAuthenticator: (): never => {
    throw new Error('unreachable');
  },
  credsAuthenticator: (): never => {
    throw new Error('unreachable');
  },
};

/** Connects, asks `nachos.system.health.status`, closes: the health view, or a ProbeError worded for people. */
export async function probeView(options: ProbeOptions, via: ProbeVia = 'wire'): Promise<HealthStatusPayload> {
  const problem = authProblem(options.auth);
  if (problem) throw new ProbeError(problem);
  const name = 'nachos-sentinel-probe';
  let nc: StatusRequester & { close(): Promise<void> };
  let id: string;
  try {
    if (via === 'wire') {
      const { auth } = options;
      const keyFile = auth.creds ? { kind: 'creds' as const, path: auth.creds } : auth.nkey ? { kind: 'nkey' as const, path: auth.nkey } : undefined;
      const connection = authOptions(options.servers, { ...auth, creds: undefined, nkey: undefined }, NO_AUTHENTICATORS);
      nc = await wireConnect({ connection, ...(keyFile ? { keyFile } : {}), name, timeoutMs: options.timeoutMs });
      id = `probe-${Date.now().toString(36)}${Math.random().toString(36).slice(2)}`;
    } else {
      const client = await natsClient();
      nc = await client.connect({ ...authOptions(options.servers, options.auth, client), name, reconnect: false, timeout: options.timeoutMs });
      id = client.nuid.next();
    }
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
    return await askStatus(nc, { ...options, id, waitOutGrace: true });
  } finally {
    await nc.close().catch(() => undefined);
  }
}

/** Asks the sentinel on the bus, prints the answer, and returns the exit code. */
export async function probeBus(options: ProbeOptions): Promise<number> {
  const view = await probeView(options);
  const status = probedStatus(view, options.component);
  const ok = status === 'healthy' || (status === 'degraded' && !options.strict);
  // `status` is what was probed (the component's, with --component); the overall one stays in `overall`.
  // So is `reason`: the component's own, the system's staying in `overallReason`.
  const reason = probedReason(view, options.component);
  if (options.json) print(1, `${printableJson({ ...view, ok, probed: options.component ?? null, overall: view.status, overallReason: view.reason, status, reason })}\n`);
  else print(1, statusTable(view, { component: options.component }));
  return ok ? EXIT.OK : EXIT.FAILURE;
}

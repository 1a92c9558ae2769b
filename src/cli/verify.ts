import { readFileSync } from 'node:fs';
import { resolveConfig } from '../config/resolve.js';
import { UsageError } from '../errors.js';
import type { SentinelConfig } from '../config/settings.js';
import { SUBJECTS } from '../protocol/topics.js';
import { ReloadFilter } from '../subscriber/reload-filter.js';
import { COMMAND_TIMEOUT, connectOnce } from './connect-once.js';
import { EXIT, type CommandLine } from './command-line.js';

/**
 * `nachos-sentinel verify --public-key KEY [FILE | --current]`: judges one
 * reload message (the whole envelope as received, JSON, from FILE, stdin, or
 * with `--current` the set in force, asked on the bus) as a sidecar of this
 * configuration would: signed by one of the trusted keys over every
 * byte, its files hashing to what it announces, for this deployment, issued
 * no later than the clock skew allows, and not expired. Exit 0 when a
 * sidecar would take it, 1 otherwise, saying why.
 */
export async function verify(cli: CommandLine, env: NodeJS.ProcessEnv, cwd: string): Promise<number> {
  const config = resolveConfig({ flags: cli.flags, env, cwd });
  if (config.publicKeys.length === 0) throw new UsageError('verify needs --public-key (or SENTINEL_PUBLIC_KEY, or keys in [trust]): the public NKey the sentinel signs with');
  if (cli.flags.current && cli.positionals.length > 0) throw new UsageError('verify takes a FILE or --current, not both');
  const source = cli.flags.current ? 'the bus' : (cli.positionals[0] ?? '-');
  let text: string;
  try {
    text = cli.flags.current ? await currentFromBus(config) : readFileSync(source === '-' ? 0 : source, 'utf8');
  } catch (err) {
    process.stderr.write(`nachos-sentinel verify: cannot read ${source === '-' ? 'stdin' : source}: ${(err as Error).message}\n`);
    return EXIT.FAILURE;
  }
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    process.stdout.write('invalid: not JSON\n');
    return EXIT.FAILURE;
  }
  const filter = new ReloadFilter({ publicKeys: config.publicKeys, deployment: config.deployment, maxClockSkewMs: config.maxClockSkewMs });
  const verdict = filter.check(message);
  const payload = (message as { payload?: { revision?: unknown; expiresAt?: unknown; deployment?: unknown; signature?: { key?: unknown }; transfer?: { sha256?: unknown } } } | null)?.payload;
  if (verdict.accept) {
    const head = payload?.transfer ? ` (a head: its body travels apart, SHA-256 ${String(payload.transfer.sha256)})` : '';
    const deployment = payload?.deployment ? ` for deployment ${String(payload.deployment)}` : '';
    process.stdout.write(`valid: revision ${String(payload?.revision)} signed by ${String(payload?.signature?.key)}${deployment}, until ${String(payload?.expiresAt)}${head}\n`);
    return EXIT.OK;
  }
  const why =
    verdict.reason === 'wrong deployment'
      ? `wrong deployment (the message is for "${String(payload?.deployment ?? '')}", this configuration for "${config.deployment}")`
      : verdict.reason === 'expired'
        ? `expired (at ${String(payload?.expiresAt)})`
        : verdict.reason;
  process.stdout.write(`invalid: ${why}\n`);
  return EXIT.FAILURE;
}

/** The reply on `nachos.system.policy.current`, asked with the configured servers and credentials. */
async function currentFromBus(config: SentinelConfig): Promise<string> {
  const nc = await connectOnce(config, 'nachos-sentinel-verify');
  try {
    const reply = await nc.request(SUBJECTS.policyCurrent, '', { timeout: COMMAND_TIMEOUT });
    return reply.string();
  } finally {
    await nc.close();
  }
}

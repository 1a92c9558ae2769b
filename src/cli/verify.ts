import { readFileSync } from 'node:fs';
import { UsageError } from '../errors.js';
import { isPublicKey } from '../policy/signature.js';
import { verifyReload } from '../subscriber/verify-reload.js';
import { EXIT, type CommandLine } from './command-line.js';

/**
 * `nachos-sentinel verify --public-key KEY [FILE]`: checks one reload message
 * (the whole envelope as received, JSON, from FILE or stdin) against the
 * sentinel's public key. Exit 0 when that key signed every byte of it and its
 * files hash to what it announces, 1 otherwise, saying why.
 */
export function verify(cli: CommandLine, env: NodeJS.ProcessEnv): number {
  const fromFlag = typeof cli.flags['public-key'] === 'string';
  const key = fromFlag ? (cli.flags['public-key'] as string) : env.SENTINEL_PUBLIC_KEY;
  if (!key) throw new UsageError('verify needs --public-key (or SENTINEL_PUBLIC_KEY): the public NKey the sentinel signs with');
  if (!isPublicKey(key)) {
    throw new UsageError(`${fromFlag ? '--public-key' : 'SENTINEL_PUBLIC_KEY'}: "${key.slice(0, 60)}" is not a public NKey (the A... or U... key the daemon logs at start as "reloads are signed")`);
  }
  const source = cli.positionals[0] ?? '-';
  let text: string;
  try {
    text = readFileSync(source === '-' ? 0 : source, 'utf8');
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
  const result = verifyReload(message, key);
  const payload = (message as { payload?: { revision?: unknown; transfer?: { sha256?: unknown } } } | null)?.payload;
  if (result.ok) {
    const head = payload?.transfer ? ` (a head: its body travels apart, SHA-256 ${String(payload.transfer.sha256)})` : '';
    process.stdout.write(`valid: revision ${String(payload?.revision)} signed by ${key}${head}\n`);
    return EXIT.OK;
  }
  process.stdout.write(`invalid: ${result.reason}\n`);
  return EXIT.FAILURE;
}

import { readFileSync } from 'node:fs';
import { UsageError } from '../errors.js';
import { verifyReload } from '../policy/signature.js';
import { EXIT, type CommandLine } from './command-line.js';

/**
 * `nachos-sentinel verify --public-key KEY [FILE]`: checks one reload message
 * (an envelope or its payload, JSON, from FILE or stdin) against the
 * sentinel's public key. Exit 0 when it is signed by that key over exactly
 * its files and revision, 1 otherwise, saying why.
 */
export function verify(cli: CommandLine, env: NodeJS.ProcessEnv): number {
  const key = typeof cli.flags['public-key'] === 'string' ? cli.flags['public-key'] : env.SENTINEL_PUBLIC_KEY;
  if (!key) throw new UsageError('verify needs --public-key (or SENTINEL_PUBLIC_KEY): the public NKey the sentinel signs with');
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
  const payload = (message as { payload?: unknown } | null)?.payload ?? message;
  const result = verifyReload(payload, key);
  const revision = (payload as { revision?: unknown } | null)?.revision;
  if (result.ok) {
    process.stdout.write(`valid: revision ${String(revision)} signed by ${key}\n`);
    return EXIT.OK;
  }
  process.stdout.write(`invalid: ${result.reason}\n`);
  return EXIT.FAILURE;
}

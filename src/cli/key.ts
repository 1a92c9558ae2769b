import { randomBytes } from 'node:crypto';
import { constants, openSync, writeSync, closeSync } from 'node:fs';
import { resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { SigningKey } from '../trust/ed25519.js';
import { encodeSeed } from '../trust/nkey.js';
import { loadSeedFile } from '../trust/seed-file.js';
import { EXIT, type CommandLine } from './command-line.js';

/** Where `keygen` writes without `--out`. */
export const DEFAULT_SEED_FILE = 'nachos-sentinel.nk';

/**
 * `nachos-sentinel keygen [--out FILE]`: a new signing seed (an NKey account
 * seed, as `nk -gen account` makes), written to FILE readable by its owner
 * only (never over an existing file); its public key on stdout. The seed
 * itself is never printed.
 */
export function keygen(cli: CommandLine, cwd: string): number {
  const path = resolve(cwd, typeof cli.flags.out === 'string' ? cli.flags.out : DEFAULT_SEED_FILE);
  const seed = encodeSeed('A', randomBytes(32));
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(code === 'EEXIST' ? `${path} exists; a seed is never written over` : `cannot write ${path}: ${(err as Error).message}`);
  }
  try {
    writeSync(fd, `${seed}\n`);
  } finally {
    closeSync(fd);
  }
  process.stdout.write(`${new SigningKey(seed).publicKey}\n`);
  process.stderr.write(`nachos-sentinel keygen: wrote a new seed to ${path} (mode 600); give the central sentinel --signing-seed ${path}, and each sidecar the public key above (--public-key)\n`);
  return EXIT.OK;
}

/** `nachos-sentinel pubkey FILE`: the public key of the seed in FILE (a file others may read is refused, as the daemon refuses it). */
export function pubkey(cli: CommandLine, cwd: string): number {
  const file = cli.positionals[0] as string;
  process.stdout.write(`${loadSeedFile(resolve(cwd, file), 'seed').key.publicKey}\n`);
  return EXIT.OK;
}

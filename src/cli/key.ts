import { randomBytes } from 'node:crypto';
import { constants, openSync, writeSync, closeSync } from 'node:fs';
import { resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { SigningKey } from '../trust/ed25519.js';
import { encodeSeed } from '../trust/nkey.js';
import { loadSeedFile } from '../trust/seed-file.js';
import { EXIT, type CommandLine } from './command-line.js';

/**
 * `nachos-sentinel key generate FILE`: a new signing seed (an NKey account
 * seed, as `nk -gen account` makes), written to FILE readable by its owner
 * only (never over an existing file); its public key on stdout.
 * `nachos-sentinel key public FILE`: the public key of the seed in FILE.
 * The seed itself is never printed.
 */
export function key(cli: CommandLine, cwd: string): number {
  const [verb, file] = cli.positionals;
  if ((verb !== 'generate' && verb !== 'public') || file === undefined) {
    throw new UsageError('key takes "generate FILE" (a new seed into FILE, mode 600) or "public FILE" (the public key of the seed in FILE)');
  }
  const path = resolve(cwd, file);
  if (verb === 'public') {
    process.stdout.write(`${loadSeedFile(path, 'seed').key.publicKey}\n`);
    return EXIT.OK;
  }
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
  process.stderr.write(`nachos-sentinel key: wrote a new seed to ${path} (mode 600); give the central sentinel --signing-seed ${path}, and each sidecar the public key above (--public-key)\n`);
  return EXIT.OK;
}

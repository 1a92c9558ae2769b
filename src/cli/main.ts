#!/usr/bin/env node
/**
 * The one executable: the daemon, `validate`, and the `--once` probe. Kept
 * thin and lazy: each use imports only what it needs, so the probe, which
 * runs every few seconds in every container, never loads the daemon's parts.
 */

import type { CommandLine } from './command-line.js';

async function dispatch(cli: CommandLine): Promise<number> {
  switch (cli.command) {
    case 'validate':
      return await (await import('./validate.js')).validate(cli, process.env, process.cwd());
    case 'verify':
      return await (await import('./verify.js')).verify(cli, process.env, process.cwd());
    case 'keygen':
      return (await import('./key.js')).keygen(cli, process.cwd());
    case 'pubkey':
      return (await import('./key.js')).pubkey(cli, process.cwd());
    case 'schema':
      return (await import('./schema.js')).schema(cli);
    case 'status':
      return await (await import('./status.js')).status(cli, process.env, process.cwd());
    case 'run':
      return await (await import('./run.js')).run(cli, process.env, process.cwd());
    case 'sidecar':
      return await (await import('./sidecar.js')).sidecar(cli, process.env, process.cwd());
    case 'history':
      return await (await import('./history.js')).history(cli, process.env, process.cwd());
    case 'rollback':
      return await (await import('./rollout.js')).rollback(cli, process.env, process.cwd());
    case 'rollout':
      return await (await import('./rollout.js')).rollout(cli, process.env, process.cwd());
  }
}

const argv = process.argv.slice(2);
if (argv.includes('--once')) {
  // The built executable sends --once to the probe's own bundle before this file loads; this is the path from source.
  process.exitCode = await (await import('./probe/once.js')).once(argv, process.env);
} else {
  (await import('./entry.js')).runEntry(argv, dispatch);
}

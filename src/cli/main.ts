#!/usr/bin/env node
/**
 * The one executable: the daemon, `validate`, and the `--once` probe. Kept
 * thin and lazy: each use imports only what it needs, so the probe, which
 * runs every few seconds in every container, never loads the daemon's parts.
 */

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--once')) {
    return (await import('./probe/once.js')).once(argv, process.env);
  }
  const { parseCommandLine, helpText, EXIT } = await import('./command-line.js');
  const { SentinelError, ERROR_CODES } = await import('../errors.js');
  const { packageVersion } = await import('./version.js');
  try {
    const cli = parseCommandLine(argv);
    if (cli.flags.help) {
      process.stdout.write(helpText(packageVersion()));
      return EXIT.OK;
    }
    if (cli.flags.version) {
      process.stdout.write(`${packageVersion()}\n`);
      return EXIT.OK;
    }
    switch (cli.command) {
      case 'validate':
        return await (await import('./validate.js')).validate(cli, process.env, process.cwd());
      case 'verify':
        return (await import('./verify.js')).verify(cli, process.env);
      case 'schema':
        return (await import('./schema.js')).schema(cli);
      case 'status':
        return await (await import('./status.js')).status(cli, process.env, process.cwd());
      case 'run':
        return await (await import('./run.js')).run(cli, process.env, process.cwd());
      case 'sidecar':
        return await (await import('./sidecar.js')).sidecar(cli, process.env, process.cwd());
    }
  } catch (err) {
    if (err instanceof SentinelError && (err.code === ERROR_CODES.USAGE || err.code === ERROR_CODES.CONFIG)) {
      process.stderr.write(`nachos-sentinel: ${err.message}\n`);
      return EXIT.USAGE;
    }
    throw err;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`nachos-sentinel: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);

#!/usr/bin/env node
/**
 * The one executable. Kept thin and lazy: each command imports only what it
 * needs, so a probe never pays for the watcher or the logger.
 */
import { packageVersion } from '../version.js';

async function main(argv: string[]): Promise<number> {
  const { parseCommandLine, helpText, EXIT } = await import('./command-line.js');
  const { SentinelError } = await import('../errors.js');
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
      case 'run':
        return await (await import('./run.js')).run(cli, process.env, process.cwd());
    }
  } catch (err) {
    if (err instanceof SentinelError && (err.code === 'SENTINEL_ERR_USAGE' || err.code === 'SENTINEL_ERR_CONFIG')) {
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

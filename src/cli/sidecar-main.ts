/**
 * The sidecar's entry, bundled on its own (dist/cli/sidecar.mjs): one runs
 * beside every container, so it loads only the sidecar's parts, never the
 * daemon's watcher, aggregator, status page or metrics. bin.cjs sends
 * `nachos-sentinel sidecar ...` here; everything else goes to main.ts.
 */
import { ERROR_CODES, SentinelError } from '../errors.js';
import { EXIT, helpText, parseCommandLine } from './command-line.js';
import { sidecar } from './sidecar.js';
import { packageVersion } from './version.js';

async function main(argv: string[]): Promise<number> {
  try {
    const cli = parseCommandLine(argv);
    if (cli.flags.help) {
      process.stdout.write(helpText(packageVersion()));
      return EXIT.OK;
    }
    return await sidecar(cli, process.env, process.cwd());
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

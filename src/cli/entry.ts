import { ERROR_CODES, SentinelError } from '../errors.js';
import { EXIT, helpText, parseCommandLine, sidecarHelpText, type CommandLine } from './command-line.js';
import { packageVersion } from './version.js';

/**
 * Runs one command line to its exit code, for both entries (main.ts and the
 * sidecar's sidecar-main.ts): `--help` and `--version` answered here, a usage
 * or configuration error said in one line (exit 2), anything unexpected said
 * with its stack (exit 1).
 */
export function runEntry(argv: string[], dispatch: (cli: CommandLine) => Promise<number>): void {
  settle(exitCode(argv, dispatch));
}

/** The process exits with the code `exit` resolves to once the event loop is empty; an error on the way is said with its stack (exit 1). */
function settle(exit: Promise<number>): void {
  exit.then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`nachos-sentinel: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

async function exitCode(argv: string[], dispatch: (cli: CommandLine) => Promise<number>): Promise<number> {
  try {
    const cli = parseCommandLine(argv);
    if (cli.flags.help) {
      process.stdout.write(cli.command === 'sidecar' ? sidecarHelpText(packageVersion()) : helpText(packageVersion()));
      return EXIT.OK;
    }
    if (cli.flags.version) {
      process.stdout.write(`${packageVersion()}\n`);
      return EXIT.OK;
    }
    return await dispatch(cli);
  } catch (err) {
    if (err instanceof SentinelError && (err.code === ERROR_CODES.USAGE || err.code === ERROR_CODES.CONFIG)) {
      process.stderr.write(`nachos-sentinel: ${err.message}\n`);
      return EXIT.USAGE;
    }
    throw err;
  }
}

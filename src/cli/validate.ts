import path from 'node:path';
import { resolveConfig } from '../config/resolve.js';
import { formatProblem } from '../errors.js';
import { loadFiles } from '../policy/load.js';
import { buildSnapshot } from '../policy/snapshot.js';
import { EXIT, type CommandLine } from './command-line.js';

/**
 * `nachos-sentinel validate [DIR]`: the daemon's own checks, offline, for CI
 * pipelines and editors. Prints every problem as `file:line:col: message`
 * (paths relative to the working directory, so editors can jump to them).
 */
export async function validate(cli: CommandLine, env: NodeJS.ProcessEnv, cwd: string): Promise<number> {
  const flags = { ...cli.flags };
  if (cli.positionals[0] !== undefined) flags.policies = cli.positionals[0];
  const config = resolveConfig({ flags, env, cwd });
  const loaded = await loadFiles({ dir: config.policies, extraFiles: config.watch, maxFileBytes: config.maxFileBytes });
  const result = buildSnapshot(loaded.sources, loaded.problems, { allowEmpty: config.allowEmpty });
  const shown = (file: string) => path.relative(cwd, path.join(config.policies, file)) || '.';

  if (cli.flags.json) {
    const document = result.ok
      ? { valid: true, revision: result.snapshot.revision, files: result.snapshot.files, rules: result.snapshot.ruleCount }
      : {
          valid: false,
          revision: result.rejection.revision,
          problems: result.rejection.problems.map((p) => ({ ...p, file: shown(p.file) })),
        };
    process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
  } else if (result.ok) {
    const { files, ruleCount, revision } = result.snapshot;
    process.stdout.write(`ok: ${files.length} file(s), ${ruleCount} rule(s), revision ${revision}\n`);
  } else {
    for (const problem of result.rejection.problems) {
      process.stdout.write(`${formatProblem({ ...problem, file: shown(problem.file) })}\n`);
    }
    const n = result.rejection.problems.length;
    process.stdout.write(`invalid: ${n} problem${n === 1 ? '' : 's'} in ${shown('')}\n`);
  }
  return result.ok ? EXIT.OK : EXIT.FAILURE;
}

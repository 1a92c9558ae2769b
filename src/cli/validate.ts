import path from 'node:path';
import { resolveConfig } from '../config/resolve.js';
import { formatProblem, type Problem } from '../errors.js';
import { SKIP_FILE_HINT } from '../policy/invalid-files.js';
import { loadFiles } from '../policy/load.js';
import { buildSnapshot } from '../policy/snapshot.js';
import { EXIT, type CommandLine } from './command-line.js';

/**
 * `nachos-sentinel validate [DIR]`: the daemon's own checks, offline, for CI
 * pipelines and editors. Prints every problem as `file:line:col: message`
 * and every warning as `file:line:col: warning: message` (paths relative to
 * the working directory when under it, so editors can jump to them; absolute otherwise). Exit 0 when every file
 * is valid (warnings or not), 1 when any is not: with invalid_files =
 * skip-file, it also says what the daemon would leave out and announce.
 */
export async function validate(cli: CommandLine, env: NodeJS.ProcessEnv, cwd: string): Promise<number> {
  const flags = { ...cli.flags };
  if (cli.positionals[0] !== undefined) flags.policies = cli.positionals[0];
  const config = resolveConfig({ flags, env, cwd });
  const loaded = await loadFiles({ dir: config.policies, extraFiles: config.watch, maxFileBytes: config.maxFileBytes });
  const { allowEmpty, strictKeys, invalidFiles, consumer, strictConsumer } = config;
  const result = buildSnapshot(loaded.sources, loaded.problems, { allowEmpty, strictKeys, invalidFiles, consumer, strictConsumer });
  // Relative to the working directory when the files are under it (editors jump to them), else as they are.
  const shown = (file: string) => {
    const full = path.join(config.policies, file);
    const relative = path.relative(cwd, full);
    return relative === '' ? '.' : relative.startsWith('..') || path.isAbsolute(relative) ? full : relative;
  };
  const located = (p: Problem) => ({ ...p, file: shown(p.file) });

  const problems = result.ok ? result.snapshot.skipped.flatMap((s) => s.problems) : result.rejection.problems;
  const warnings = result.ok ? result.snapshot.warnings : result.rejection.warnings;
  const valid = problems.length === 0;

  if (cli.flags.json) {
    const document = {
      valid,
      revision: result.ok ? result.snapshot.revision : result.rejection.revision,
      files: result.ok ? result.snapshot.files : result.rejection.files,
      ...(result.ok ? { rules: result.snapshot.ruleCount } : {}),
      problems: problems.map(located),
      warnings: warnings.map(located),
      ...(result.ok && result.snapshot.skipped.length > 0 ? { skipped: result.snapshot.skipped.map((s) => shown(s.path)) } : {}),
    };
    process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
    return valid ? EXIT.OK : EXIT.FAILURE;
  }

  const out: string[] = [];
  for (const problem of problems) out.push(formatProblem(located(problem)));
  for (const warning of warnings) out.push(formatProblem(located(warning), 'warning'));
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  const warned = warnings.length > 0 ? `, ${count(warnings.length, 'warning')}` : '';
  if (result.ok && valid) {
    const { files, ruleCount, revision } = result.snapshot;
    out.push(`ok: ${count(files.length, 'file')}, ${count(ruleCount, 'rule')}, revision ${revision}${warned}`);
  } else if (result.ok) {
    const { skipped, files, ruleCount, revision } = result.snapshot;
    out.push(`invalid: ${count(problems.length, 'problem')} in ${count(skipped.length, 'file')}${warned}`);
    out.push(
      `with invalid_files = skip-file the daemon leaves out ${skipped.map((s) => shown(s.path)).join(', ')} and announces ${count(files.length, 'file')}, ${count(ruleCount, 'rule')}, revision ${revision}`,
    );
  } else {
    out.push(`invalid: ${count(problems.length, 'problem')} in ${shown('')}${warned}`);
    if (invalidFiles === 'reject-set' && problems.some((p) => p.file !== '')) out.push(`the daemon refuses the whole set; ${SKIP_FILE_HINT}`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
  return valid ? EXIT.OK : EXIT.FAILURE;
}

import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import { extname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';

/**
 * How Nachos' gateway reads its policy directory, replayed: its PolicyLoader
 * (packages/core/gateway/src/salsa/policy/loader.ts) watches the directory
 * with `fs.watch` (not recursive), ignores every event whose file name does
 * not end in `.yaml` or `.yml`, waits 100 ms after the last one, then lists
 * the directory and, for each `*.yaml` / `*.yml` file, reads it (`utf-8`) and
 * parses it as YAML; a file whose read or parse throws is recorded as an error
 * (`{ file, message }`, its message as Nachos words it) and skipped, and the
 * others load. (Nachos then validates each document; these are valid, and
 * that step is left out.) Each load is recorded as name -> SHA-256 of the
 * files it read, and its errors.
 */
export class NachosStyleReader {
  readonly loads: { at: number; files: Map<string, string>; errors: { file: string; message: string }[] }[] = [];
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly dir: string) {}

  start(): this {
    this.load();
    this.watcher = watch(this.dir, { recursive: false }, (_event, filename) => {
      if (!filename) return;
      const ext = extname(filename);
      if (ext !== '.yaml' && ext !== '.yml') return;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.load(), 100);
    });
    return this;
  }

  load(): void {
    const files = new Map<string, string>();
    const errors: { file: string; message: string }[] = [];
    for (const name of readdirSync(this.dir).filter((f) => extname(f) === '.yaml' || extname(f) === '.yml')) {
      try {
        const bytes = readFileSync(join(this.dir, name));
        parseYaml(bytes.toString('utf-8'));
        files.set(name, createHash('sha256').update(bytes).digest('hex'));
      } catch (err) {
        errors.push({ file: name, message: `Failed to load policy file: ${err instanceof Error ? err.message : String(err)}` });
      }
    }
    this.loads.push({ at: performance.now(), files, errors });
  }

  close(): void {
    clearTimeout(this.timer);
    this.watcher?.close();
  }
}

/**
 * Where a copy of Nachos' repository is (a checkout or a bare git directory of
 * Nacho-Labs-LLC/nachos): the environment variable NACHOS_REPO, and nothing
 * else. Tests that run Nachos' own code skip without it, saying why.
 */
export const NACHOS_REPO: string | undefined = process.env.NACHOS_REPO || undefined;

/** Nachos' repository as a git directory, when NACHOS_REPO names one that holds its policy loader. */
function gitDirOf(repo: string | undefined): string | undefined {
  if (repo === undefined || !existsSync(repo)) return undefined;
  const gitDir = existsSync(join(repo, '.git')) ? join(repo, '.git') : repo;
  try {
    execFileSync('git', ['--git-dir', gitDir, 'cat-file', '-e', 'HEAD:packages/core/gateway/src/salsa/policy/loader.ts'], { stdio: 'ignore' });
    return gitDir;
  } catch {
    return undefined;
  }
}
const GIT_DIR = gitDirOf(NACHOS_REPO);
export const nachosAvailable = GIT_DIR !== undefined;
/** Why the tests that run Nachos' own code are skipped, when they are. */
export const nachosSkipReason =
  NACHOS_REPO === undefined
    ? 'NACHOS_REPO is not set (a checkout or bare git directory of Nacho-Labs-LLC/nachos)'
    : `NACHOS_REPO=${NACHOS_REPO} does not hold Nachos' repository (no packages/core/gateway/src/salsa/policy/loader.ts at HEAD)`;

/** A file of Nachos' repository at HEAD. Nothing of Nachos is kept in this repository. */
export function nachosSource(file: string): string {
  if (GIT_DIR === undefined) throw new Error(nachosSkipReason);
  return execFileSync('git', ['--git-dir', GIT_DIR, 'show', `HEAD:${file}`]).toString();
}

/**
 * Nachos' own modules, compiled from its sources with esbuild (their type-only
 * imports dropped; `yaml` resolved from this project's node_modules), and
 * imported: the real PolicyLoader and the real health server.
 */
export async function importNachos<T>(file: string, siblings: Record<string, string> = {}): Promise<T> {
  const { build } = await import('esbuild');
  const dir = file.slice(0, file.lastIndexOf('/'));
  const result = await build({
    stdin: { contents: nachosSource(file), loader: 'ts', resolveDir: process.cwd(), sourcefile: file },
    bundle: true,
    format: 'esm',
    platform: 'node',
    write: false,
    logLevel: 'silent',
    // Bundled CommonJS (yaml) requires Node's own modules: a require that resolves from this project.
    banner: { js: `import { createRequire as __nachosRequire } from 'node:module'; const require = __nachosRequire(${JSON.stringify(join(process.cwd(), 'package.json'))});` },
    plugins: [
      {
        name: 'nachos-sources',
        setup(b) {
          // Its relative imports come from the same copy of the repository; types from elsewhere are empty.
          b.onResolve({ filter: /^\.\.?\// }, (args) => (args.importer.includes('node_modules') ? undefined : { path: args.path, namespace: 'nachos' }));
          b.onResolve({ filter: /^@nachos\// }, (args) => ({ path: args.path, namespace: 'empty' }));
          b.onLoad({ filter: /.*/, namespace: 'empty' }, () => ({ contents: 'export {};', loader: 'js' }));
          b.onLoad({ filter: /.*/, namespace: 'nachos' }, (args) => {
            const name = args.path.replace(/^\.\//, '').replace(/\.js$/, '.ts');
            const path = siblings[name] ?? `${dir}/${name}`;
            if (name.startsWith('../')) return { contents: 'export {};', loader: 'js' };
            return { contents: nachosSource(path), loader: 'ts', resolveDir: process.cwd() };
          });
        },
      },
    ],
  });
  const code = result.outputFiles[0]?.text ?? '';
  return (await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`)) as T;
}

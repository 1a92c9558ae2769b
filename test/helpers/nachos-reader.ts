import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import { extname, join } from 'node:path';

/**
 * How Nachos' gateway reads its policy directory, replayed: its PolicyLoader
 * (packages/core/gateway/src/salsa/policy/loader.ts) watches the directory
 * with `fs.watch` (not recursive), ignores every event whose file name does
 * not end in `.yaml` or `.yml`, waits 100 ms after the last one, then lists
 * the directory and reads each `*.yaml` / `*.yml` file (a file it cannot read
 * is skipped, with an error). Each load is recorded as name -> SHA-256.
 */
export class NachosStyleReader {
  readonly loads: { at: number; files: Map<string, string>; errors: string[] }[] = [];
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
    const errors: string[] = [];
    for (const name of readdirSync(this.dir).filter((f) => extname(f) === '.yaml' || extname(f) === '.yml')) {
      try {
        files.set(name, createHash('sha256').update(readFileSync(join(this.dir, name))).digest('hex'));
      } catch (err) {
        errors.push(`${name}: ${(err as Error).message}`);
      }
    }
    this.loads.push({ at: performance.now(), files, errors });
  }

  close(): void {
    clearTimeout(this.timer);
    this.watcher?.close();
  }
}

/** Where a copy of Nachos' repository is (a checkout or a bare git directory); by default the one the project's tooling fetches. */
export const NACHOS_REPO = process.env.NACHOS_REPO ?? '/work/.mirror/Nacho-Labs-LLC+nachos/repo';
export const nachosAvailable = existsSync(NACHOS_REPO);

/** A file of Nachos' repository at HEAD. Nothing of Nachos is kept in this repository. */
export function nachosSource(file: string): string {
  const gitDir = existsSync(join(NACHOS_REPO, '.git')) ? join(NACHOS_REPO, '.git') : NACHOS_REPO;
  return execFileSync('git', ['--git-dir', gitDir, 'show', `HEAD:${file}`]).toString();
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

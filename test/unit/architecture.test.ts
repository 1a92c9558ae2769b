import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The shape of src/, checked: each folder says in its README what it owns and
 * what it may import, and this holds the code to it. Imports are read from the
 * source text (static, re-exports, dynamic and `typeof import(...)`), so a
 * type-only import counts too: a cycle of types is still a tangle to read.
 */

const SRC = path.resolve(import.meta.dirname, '../../src');
/** The root of src/: the library's entry point, and the modules every folder shares. */
const ROOT_ENTRIES = ['index.ts'];
const ROOT_SHARED = ['errors.ts', 'clock.ts'];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return sourceFiles(full);
    return /\.c?ts$/.test(name) && !name.endsWith('.d.ts') ? [full] : [];
  });
}

const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g;

/** Every file of src/ and the files of src/ it imports. */
function importGraph(): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const file of sourceFiles(SRC)) {
    const targets = new Set<string>();
    for (const [, spec] of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const target = path.resolve(path.dirname(file), spec as string).replace(/\.c?js$/, (ext) => (ext === '.cjs' ? '.cts' : '.ts'));
      targets.add(target);
    }
    graph.set(file, targets);
  }
  return graph;
}

/** The top folder of a file under src/ (`.` for the root). */
function folderOf(file: string): string {
  const [first, ...rest] = path.relative(SRC, file).split(path.sep);
  return rest.length === 0 ? '.' : (first as string);
}

/** Strongly connected components of more than one node, or a node importing itself: the cycles. */
function cycles(graph: Map<string, Set<string>>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || graph.get(v)?.has(v)) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

const graph = importGraph();
const folders = readdirSync(SRC).filter((name) => statSync(path.join(SRC, name)).isDirectory());

/** The folder-to-folder imports, the root's entry point left out (nothing imports it). */
function folderGraph(): Map<string, Set<string>> {
  const edges = new Map<string, Set<string>>();
  for (const [file, targets] of graph) {
    if (ROOT_ENTRIES.includes(path.relative(SRC, file))) continue;
    const from = folderOf(file);
    for (const target of targets) {
      const to = folderOf(target);
      if (to === from) continue;
      if (!edges.has(from)) edges.set(from, new Set());
      edges.get(from)?.add(to);
    }
  }
  return edges;
}

/** What a folder's README allows: the backticked folders on its "May import:" line, before any ";". */
function allowed(folder: string): { every: boolean; folders: Set<string> } {
  const readme = readFileSync(path.join(SRC, folder, 'README.md'), 'utf8');
  const line = /^May import: (.*)$/m.exec(readme)?.[1];
  if (line === undefined) throw new Error(`src/${folder}/README.md has no "May import:" line`);
  const list = line.split(';')[0] as string;
  return { every: /every folder/.test(list), folders: new Set([...list.matchAll(/`([a-z-]+)\/`/g)].map((m) => m[1] as string)) };
}

describe('architecture', () => {
  it('has no import cycle between files', () => {
    expect(cycles(graph).map((c) => c.map((f) => path.relative(SRC, f)))).toEqual([]);
  });

  it('has no import cycle between folders', () => {
    expect(cycles(folderGraph())).toEqual([]);
  });

  it('keeps only entry points and truly shared modules at the root of src/', () => {
    const rootFiles = readdirSync(SRC).filter((name) => !statSync(path.join(SRC, name)).isDirectory());
    expect(rootFiles.sort()).toEqual([...ROOT_ENTRIES, ...ROOT_SHARED].sort());
    // Shared means depended on, depending on nothing of ours.
    for (const name of ROOT_SHARED) expect([...(graph.get(path.join(SRC, name)) ?? [])], name).toEqual([]);
  });

  it('lets nothing but the CLI import a composition root (the daemon and the sidecar)', () => {
    const importers = [...graph].filter(([, targets]) => [...targets].some((t) => folderOf(t) === 'roles')).map(([file]) => path.relative(SRC, file));
    expect(importers.filter((file) => folderOf(path.join(SRC, file)) !== 'roles').sort()).toEqual(['cli/run.ts', 'cli/sidecar.ts']);
  });

  it.each(folders)('src/%s/ imports only what its README allows, and its README names files that exist', (folder) => {
    const rule = allowed(folder);
    const used = folderGraph().get(folder) ?? new Set<string>();
    const unexpected = [...used].filter((to) => to !== '.' && !rule.every && !rule.folders.has(to));
    expect(unexpected, `src/${folder}/README.md does not allow these`).toEqual([]);
    // The README says nothing false about what is inside.
    const readme = readFileSync(path.join(SRC, folder, 'README.md'), 'utf8');
    const named = [...readme.matchAll(/`([a-z0-9-]+\.c?ts)`/g)].map((m) => m[1] as string).filter((f) => !ROOT_SHARED.includes(f));
    const present = new Set(sourceFiles(path.join(SRC, folder)).map((f) => path.basename(f)));
    expect(named.filter((f) => !present.has(f)), `src/${folder}/README.md names files that are not there`).toEqual([]);
  });

  it('is not vacuous: it finds a cycle and a forbidden import when there is one', () => {
    const a = path.join(SRC, 'x/a.ts');
    const b = path.join(SRC, 'y/b.ts');
    expect(cycles(new Map([[a, new Set([b])], [b, new Set([a])]]))).toHaveLength(1);
    expect(graph.size).toBeGreaterThan(50);
    // The policy folder really imports text/, and text/ allows nothing: a text -> policy import would be caught.
    expect(folderGraph().get('policy')?.has('text')).toBe(true);
    expect(allowed('text').folders.size).toBe(0);
  });
});

describe("the sidecar's bundle", () => {
  it("holds none of the daemon's parts it does not use: no watcher, aggregator, status page, metrics or YAML parser", async () => {
    const { build } = await import('esbuild');
    // The same bundle `npm run build` makes (dist/cli/sidecar.mjs), asked only for the list of what it holds.
    const { metafile } = await build({ entryPoints: [path.join(SRC, 'cli/sidecar-main.ts')], bundle: true, platform: 'node', format: 'esm', write: false, metafile: true, logLevel: 'silent' });
    const inputs = Object.keys(metafile.inputs);
    expect(inputs).toContain('src/deliver/configmap-dir.ts');
    const forbidden = [/node_modules\/chokidar\//, /node_modules\/prom-client\//, /node_modules\/yaml\//, /^src\/watch\//, /^src\/reload\//, /^src\/health\/aggregator\.ts$/, /^src\/http\/(status-page|metrics)/, /^src\/roles\/sentinel\.ts$/];
    expect(inputs.filter((input) => forbidden.some((f) => f.test(input)))).toEqual([]);
  });
});

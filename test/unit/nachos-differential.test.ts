import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as stringifyToml } from 'smol-toml';
import { stringify } from 'yaml';
import type { Problem } from '../../src/errors.js';
import { loadFiles } from '../../src/policy/load.js';
import { buildSnapshot } from '../../src/policy/snapshot.js';
import { importNachos, nachosAvailable, NACHOS_REPO, nachosSkipReason } from '../helpers/nachos-reader.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * The sentinel's claims about Nachos, checked against Nachos itself: policy
 * directories generated around the edges of Nachos' schema (types, nulls,
 * empty lists, unknown operators, YAML tags, anchors and merge keys,
 * duplicate ids within and across files, other extensions and hidden names)
 * go through the sentinel (skip-file, consumer nachos) and through Nachos' own
 * PolicyLoader, compiled from its repository. It holds that the sentinel never
 * announces a file Nachos drops, and that every problem's claim about Nachos
 * ("refuses this too and skips", "would load", "loads as it is", "not in
 * force in a Nachos gateway") is what Nachos did. The seed is printed
 * (`NACHOS_DIFF_SEED` replays it); `NACHOS_DIFF_RUNS` sets how many directories.
 */

type LoaderModule = {
  PolicyLoader: new (c: { policiesPath: string; enableHotReload: boolean }) => { load(): [{ rules: { id: string }[] }[], { file: string }[]] };
};

const RUNS = Number(process.env.NACHOS_DIFF_RUNS ?? 2000);
const SEED = Number(process.env.NACHOS_DIFF_SEED ?? Math.floor(Math.random() * 2 ** 31));

// Values around the edges of each field: mostly what Nachos' own files hold, sometimes an edge,
// so that most documents are near a valid one and each edge is met alone as well as in company.
const usually = <T>(valid: fc.Arbitrary<T>, ...edges: unknown[]) => fc.oneof({ weight: 6, arbitrary: valid as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: fc.constantFrom(...edges) });
const ids = fc.constantFrom('r1', 'r2', 'r3', 'shared');
const condition = fc.record(
  {
    field: usually(fc.constantFrom('security_mode', 'metadata.path'), '', 1),
    operator: usually(fc.constantFrom('equals', 'not_equals', 'in', 'not_in', 'contains', 'matches', 'starts_with', 'ends_with'), 'less_than', 'regex'),
    value: fc.constantFrom<unknown>('standard', ['standard', 'strict'], [1, 2], null, { a: 1 }, 5, '(', '^/etc/', true, []),
  },
  { requiredKeys: ['field', 'operator', 'value'] },
);
const match = usually(
  fc.record(
    {
      resource: usually(fc.constantFrom<unknown>('tool', ['tool', 'dm']), 'tools', [], 1),
      action: usually(fc.constantFrom<unknown>('read', ['read', 'call']), 'reading'),
      resourceId: usually(fc.constantFrom<unknown>('browser', ['browser']), [], [1], ''),
    },
    { requiredKeys: [] },
  ),
  [],
  [{ resource: 'tool' }],
  null,
);
const rule = fc.record(
  {
    id: usually(ids, 1, '', null),
    priority: usually(fc.constantFrom(1, 100, -5), 1.5, 'high', Number.NaN),
    match,
    effect: usually(fc.constantFrom('allow', 'deny'), 'maybe'),
    description: usually(fc.constant('a rule'), 42),
    reason: usually(fc.constant('why'), 7),
    conditions: usually(fc.array(condition, { maxLength: 2 }), null, 'x'),
    audit: fc.boolean(),
  },
  { requiredKeys: ['id', 'priority', 'match', 'effect'] },
);
const doc = fc.record(
  {
    version: usually(fc.constant('1.0'), 1, 0, '', true, null),
    metadata: usually(fc.constant({ name: 'x', mode: 'standard' }), { mode: 'weird' }, 'free', 42),
    rules: usually(fc.array(rule, { maxLength: 3 }), null, 'x', {}),
  },
  { requiredKeys: ['version', 'rules'] },
);

/** A document as text: YAML (usually), TOML where TOML can say it, or a YAML device a generator of values cannot make. */
const yamlText = fc.oneof(
  { weight: 8, arbitrary: doc.map((d) => stringify(d)) },
  // Anchors and a merge key: the rule's fields come from a shared mapping.
  { weight: 1, arbitrary: fc.constant('version: "1.0"\nbase: &base\n  priority: 10\n  match: { resource: tool }\n  effect: allow\nrules:\n  - <<: *base\n    id: merged\n') },
  // A binary scalar, where Nachos only stores the value, and where it compares it.
  { weight: 1, arbitrary: fc.constantFrom('version: "1.0"\nrules:\n  - id: bin\n    priority: 1\n    match: {}\n    effect: allow\n    description: !!binary aGVsbG8=\n', 'version: "1.0"\nrules:\n  - id: binv\n    priority: 1\n    match: {}\n    effect: allow\n    conditions: [{ field: f, operator: equals, value: !!binary aGVsbG8= }]\n') },
  // A key twice in one mapping, two documents, an empty file, tabs, a priority of .nan, bytes that are not UTF-8.
  {
    weight: 1,
    arbitrary: fc.constantFrom<string | Buffer>(
      'version: "1.0"\nversion: "2.0"\nrules: []\n',
      'version: "1.0"\nrules: []\n---\nversion: "1.0"\nrules: []\n',
      '',
      'version: "1.0"\nrules:\n\t- id: t\n',
      'version: "1.0"\nrules:\n  - id: nan\n    priority: .nan\n    match: {}\n    effect: deny\n',
      Buffer.from('version: "1.0"\nrules:\n  - id: latin\n    priority: 1\n    match: {}\n    effect: allow\n    reason: "caf\xe9"\n', 'latin1'),
    ),
  },
);
const tomlText = doc.map((d) => {
  try {
    return stringifyToml(JSON.parse(JSON.stringify(d, (_k, v: unknown) => (v === null || (typeof v === 'number' && Number.isNaN(v)) ? undefined : v))) as Record<string, unknown>);
  } catch {
    return 'version = "1.0"\nrules = []\n';
  }
});
const names = fc.constantFrom<string>('a.yaml', 'b.yaml', 'c.yml', 'd.toml', '.hidden.yaml', 'e.json', 'f.YAML');
const directory = fc.uniqueArray(
  names.chain((name) => (name.endsWith('.toml') ? tomlText : yamlText).map((content) => [name, content] as const)),
  { minLength: 1, maxLength: 4, selector: ([n]) => n },
);

/** The three claims a problem can make about Nachos, and the file each is about. */
function claims(problem: Problem): { drops?: string; loads?: string; unread?: string } {
  const m = /Nachos' own loader (?:refuses this too|cannot parse it either) and skips the whole of ([^:;]+)/.exec(problem.message);
  if (m) return { drops: m[1] };
  const l = /Nachos' loader (?:would load|would still load|loads) ([^\s,;:]+)/.exec(problem.message);
  if (l) return { loads: l[1] };
  if (/not in force in a Nachos gateway/.test(problem.message)) return { unread: problem.file };
  return {};
}

describe.skipIf(!nachosAvailable)(`the sentinel's claims about Nachos, against Nachos' own PolicyLoader (${nachosAvailable ? NACHOS_REPO : `skipped: ${nachosSkipReason}`})`, () => {
  let loader: LoaderModule['PolicyLoader'];
  let root: string;
  let cleanup: () => void;
  const quiet = { log: console.log, warn: console.warn, error: console.error };
  beforeAll(async () => {
    ({ PolicyLoader: loader } = await importNachos<LoaderModule>('packages/core/gateway/src/salsa/policy/loader.ts'));
    ({ dir: root, cleanup } = tempDir());
  });
  afterAll(() => cleanup());

  it(`holds for ${RUNS} generated directories (seed ${SEED}): nothing announced that Nachos drops, every claim about Nachos true`, async () => {
    console.info(`nachos-differential: seed ${SEED}, ${RUNS} directories (NACHOS_DIFF_SEED=${SEED} replays)`);
    const kinds: Record<string, number> = {};
    const count = (kind: string) => (kinds[kind] = (kinds[kind] ?? 0) + 1);
    let n = 0;
    await fc.assert(
      fc.asyncProperty(directory, async (files) => {
        const dir = path.join(root, `d${n++}`);
        mkdirSync(dir);
        for (const [name, content] of files) writeFileSync(path.join(dir, name), content);
        // Nachos, as its gateway loads: the files it read and did not report are the ones in force.
        console.log = console.warn = console.error = () => undefined;
        let errors: { file: string }[];
        try {
          [, errors] = new loader({ policiesPath: dir, enableHotReload: false }).load();
        } finally {
          Object.assign(console, quiet);
        }
        const read = files.map(([name]) => name).filter((name) => path.extname(name) === '.yaml' || path.extname(name) === '.yml');
        const dropped = new Set(errors.map((e) => e.file));
        const loaded = new Set(read.filter((name) => !dropped.has(name)));
        // The sentinel, as a central with skip-file and a Nachos consumer.
        const got = await loadFiles({ dir, extraFiles: [], maxFileBytes: 1024 * 1024 });
        const built = buildSnapshot(got.sources, got.problems, { allowEmpty: true, invalidFiles: 'skip-file', consumer: 'nachos' });
        const announced = built.ok ? built.snapshot.files.map((f) => f.path) : [];
        const problems = built.ok ? [...built.snapshot.skipped.flatMap((s) => s.problems), ...built.snapshot.warnings] : [...built.rejection.problems, ...built.rejection.warnings];
        rmSync(dir, { recursive: true, force: true });

        for (const name of announced) {
          if (read.includes(name)) expect(loaded.has(name), `announced ${name}, which Nachos drops`).toBe(true);
        }
        for (const p of problems) {
          const c = claims(p);
          if (c.drops) expect(loaded.has(c.drops), `claims Nachos drops ${c.drops}: ${p.message}`).toBe(false);
          if (c.loads) expect(loaded.has(c.loads), `claims Nachos loads ${c.loads}: ${p.message}`).toBe(true);
          if (c.unread) expect(read.includes(c.unread), `claims Nachos never reads ${c.unread}`).toBe(false);
        }
        // Every verdict about a file Nachos reads says what Nachos does with it: a file it loads, in every
        // problem (but unknown keys, which it ignores by design); a file it drops, in one.
        for (const name of read.filter((n) => !n.startsWith('.'))) {
          const said = problems.filter((p) => p.file === name && p.code !== 'SENTINEL_ERR_POLICY_UNKNOWN_KEY');
          if (said.length === 0) continue;
          if (loaded.has(name)) for (const p of said) expect(claims(p).loads, `says nothing of Nachos loading ${name}: ${p.message}`).toBe(name);
          else expect(said.some((p) => claims(p).drops === name), `says nowhere that Nachos drops ${name}: ${said.map((p) => p.message).join(' | ')}`).toBe(true);
        }
        // The kinds of difference, counted per file.
        for (const [name] of files) {
          const mine = problems.filter((p) => p.file === name);
          const skipped = built.ok && built.snapshot.skipped.some((s) => s.path === name);
          const inSet = announced.includes(name);
          const nachosReads = read.includes(name);
          const nachosLoads = loaded.has(name);
          if (!nachosReads && name.startsWith('.')) count('hidden or other extension: neither reads it');
          else if (nachosReads && name.startsWith('.')) count(nachosLoads ? 'hidden *.yaml: Nachos loads it, the sentinel never reads hidden files' : 'hidden *.yaml: Nachos drops it, the sentinel never reads hidden files');
          else if (!nachosReads && name.endsWith('.toml')) count(inSet ? 'TOML: announced with a "not in force in Nachos" warning' : 'TOML: invalid, skipped (Nachos never reads it)');
          else if (!nachosReads) count('other extension: neither reads it');
          else if (nachosLoads && inSet) count(mine.length > 0 ? 'both load it; the sentinel warns (unknown keys, or types that change no decision)' : 'both load it, no problem');
          else if (!nachosLoads && skipped) count('both drop it (the sentinel says Nachos refuses it too)');
          else if (nachosLoads && skipped) count('Nachos loads it; the sentinel refuses it (a defect that can change a decision, said so)');
          else count('other');
        }
        return true;
      }),
      { numRuns: RUNS, seed: SEED },
    );
    console.info(`nachos-differential kinds over ${RUNS} directories:\n${Object.entries(kinds).sort(([, a], [, b]) => b - a).map(([k, v]) => `  ${String(v).padStart(6)}  ${k}`).join('\n')}`);
    expect(kinds.other ?? 0).toBe(0);
  }, 300_000);
});


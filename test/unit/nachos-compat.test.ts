import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { transformSync } from 'esbuild';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { buildSnapshot } from '../../src/policy/snapshot.js';
import { nachosRefusals } from '../../src/policy/nachos-compat.js';
import { NACHOS_REPO, nachosAvailable, nachosSkipReason, nachosSource } from '../helpers/nachos-reader.js';

/**
 * The claim that the sentinel knows what Nachos does with a policy file,
 * checked against Nachos itself: its validator's source and its own policies/
 * directory, taken from a copy of its repository (NACHOS_REPO: a checkout or
 * a bare git directory). Nothing of Nachos is kept in this repository, and
 * nothing of it is read until a test runs: without it, the tests skip and say why.
 */
const gitShow = nachosSource;
type NachosValidate = (doc: unknown, filename: string) => unknown[];

/** Whether Nachos' loader drops the file: its validator finds a problem, or throws (the loader catches that, and drops the file too). */
function refusedBy(validate: NachosValidate, doc: unknown): boolean {
  try {
    return validate(doc, 'x.yaml').length > 0;
  } catch {
    return true;
  }
}

async function realValidator(): Promise<NachosValidate> {
  const source = gitShow('packages/core/gateway/src/salsa/policy/validator.ts');
  // Its only import is of types, which the transform drops.
  const { code } = transformSync(source, { loader: 'ts', format: 'esm' });
  const mod = (await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`)) as { validatePolicyDocument: NachosValidate };
  return mod.validatePolicyDocument;
}

describe.skipIf(!nachosAvailable)(`against Nachos itself (${nachosAvailable ? NACHOS_REPO : `skipped: ${nachosSkipReason}`})`, () => {
  const nachosPolicies = ['permissive.yaml', 'standard.yaml', 'strict.yaml'].map((name) => ({
    name,
    get text() {
      return gitShow(`policies/${name}`);
    },
  }));
  const fixtures = path.resolve(import.meta.dirname, '../fixtures/nachos-style');
  const ours = readdirSync(fixtures)
    .filter((f) => /\.ya?ml$/.test(f))
    .map((name) => ({ name, text: readFileSync(path.join(fixtures, name), 'utf8') }));

  it('refuses exactly the documents Nachos\' validator refuses: its own files, ours, and thousands of variants', async () => {
    const validate = await realValidator();
    for (const { name, text } of [...nachosPolicies, ...ours]) {
      const doc = parseYaml(text) as unknown;
      expect(nachosRefusals(doc).length > 0, name).toBe(refusedBy(validate, doc));
    }
    // Variants: a rule of a file Nachos loads (its strict.yaml) with one field replaced by something else.
    const base = parseYaml(nachosPolicies[2]?.text ?? '') as { rules: Record<string, unknown>[] };
    expect(refusedBy(validate, base)).toBe(false);
    const value = fc.oneof(fc.constant(undefined), fc.constant(null), fc.boolean(), fc.integer(), fc.string(), fc.constantFrom('tool', 'read', 'equals', 'deny', 'less_than'), fc.array(fc.constantFrom('tool', 'dm', 'x', 1)), fc.dictionary(fc.constantFrom('resource', 'action', 'resourceId', 'field', 'operator', 'value'), fc.constantFrom('tool', 'call', 'in', 'x', 3)));
    const field = fc.constantFrom('id', 'priority', 'match', 'effect', 'conditions', 'description', 'audit');
    fc.assert(
      fc.property(fc.nat(base.rules.length - 1), field, value, fc.constantFrom('rule', 'match', 'condition'), (index, key, v, where) => {
        const doc = structuredClone(base);
        const rule = doc.rules[index] as Record<string, unknown>;
        if (where === 'rule') rule[key] = v;
        else if (where === 'match') (rule.match as Record<string, unknown>)[key === 'id' ? 'resource' : key === 'priority' ? 'action' : 'resourceId'] = v;
        else rule.conditions = [{ field: 'x', operator: 'equals', value: 1, ...(typeof v === 'object' && v !== null ? v : { [key]: v }) }];
        return nachosRefusals(doc).length > 0 === refusedBy(validate, doc);
      }),
      { numRuns: 3000 },
    );
  });

  it('with skip-file, keeps exactly the files Nachos\' loader loads from its own policies/ directory', async () => {
    const validate = await realValidator();
    const loadedByNachos = nachosPolicies.filter(({ text }) => !refusedBy(validate, parseYaml(text))).map((p) => p.name);
    const result = buildSnapshot(
      nachosPolicies.map(({ name, text }) => ({ path: name, kind: 'policy' as const, content: Buffer.from(text) })),
      [],
      { allowEmpty: false, invalidFiles: 'skip-file' },
    );
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.snapshot.files.map((f) => f.path)).toEqual(loadedByNachos);
    expect(result.snapshot.skipped.map((s) => s.path).sort()).toEqual(nachosPolicies.map((p) => p.name).filter((n) => !loadedByNachos.includes(n)));
    // And what is refused is refused for what Nachos refuses, nothing else: the rest are warnings.
    expect(result.snapshot.skipped.flatMap((s) => s.problems).every((p) => /Nachos|not_starts_with_any|less_than/.test(p.message))).toBe(true);
    expect(result.snapshot.warnings.length).toBe(0);
  });
});

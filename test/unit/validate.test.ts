import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/errors.js';
import { checkConditionValue, validateSet, type SourceFile } from '../../src/policy/validate.js';

const policiesDir = path.resolve(import.meta.dirname, '../../policies');

function policy(pathName: string, text: string): SourceFile {
  return { path: pathName, kind: 'policy', content: Buffer.from(text) };
}

const RULE = `
[[rules]]
id = "r1"
priority = 10
match = { resource = "tool", action = "call" }
effect = "allow"
`;

describe('validateSet', () => {
  it('accepts the shipped example policies', () => {
    const files = readdirSync(policiesDir)
      .filter((f) => /\.(toml|ya?ml)$/.test(f))
      .map((f) => policy(f, readFileSync(path.join(policiesDir, f), 'utf8')));
    expect(files.map((f) => f.path).sort()).toEqual(['permissive.yaml', 'standard.yaml', 'strict.yaml']);
    const result = validateSet(files);
    expect(result.problems).toEqual([]);
    expect(result.policies.map((p) => p.document.metadata?.mode)).toEqual(['permissive', 'standard', 'strict']);
    expect(result.ruleCount).toBeGreaterThan(15);
  });

  it('accepts the minimal document Nachos allows (optional fields absent, arrays in match)', () => {
    const result = validateSet([
      policy('a.toml', `version = "1.0"\n[[rules]]\nid = "x"\npriority = 1\nmatch = { resource = ["tool", "llm"] }\neffect = "deny"\n`),
    ]);
    expect(result.problems).toEqual([]);
    expect(result.policies[0]?.document.rules[0]?.match.resource).toEqual(['tool', 'llm']);
  });

  it('reports TOML syntax errors with line and column', () => {
    const { problems } = validateSet([policy('bad.toml', 'version = "1.0"\nrules = [\n  { id = 1 \n')]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ code: ERROR_CODES.POLICY_SYNTAX, file: 'bad.toml', line: 4, column: 1 });
    expect(problems[0]?.message).toMatch(/^TOML syntax: /);
  });

  it('reports every schema error with file, line, rule id and a readable message', () => {
    const text = `version = "1.0"
[metadata]
mode = "strikt"

[[rules]]
id = "first"
priority = "high"
match = { resource = "tools" }
effect = "allow"
efect = "deny"
`;
    const { problems, policies, warnings } = validateSet([policy('p.toml', text)]);
    expect(policies).toEqual([]);
    const byPath = Object.fromEntries([...problems, ...warnings].map((p) => [p.path, p]));
    expect(byPath['/metadata/mode']).toMatchObject({ line: 3, code: ERROR_CODES.POLICY_SCHEMA });
    expect(byPath['/metadata/mode']?.message).toContain('must be one of "strict", "standard", "permissive", got "strikt"');
    expect(byPath['/rules/0/priority']).toMatchObject({ line: 7, ruleId: 'first' });
    expect(byPath['/rules/0/priority']?.message).toContain('must be a number, got "high"');
    expect(byPath['/rules/0/match/resource']).toMatchObject({ line: 8, column: 11, ruleId: 'first' });
    expect(byPath['/rules/0/efect']?.message).toBe('rules[0]: unknown key "efect" (did you mean "effect"?)');
  });

  it('requires version, rules, and each rule its id, priority, match and effect', () => {
    const { problems } = validateSet([policy('p.toml', '[[rules]]\nreason = "x"\n')]);
    const messages = problems.map((p) => p.message);
    expect(messages).toContain('missing required key "version"');
    for (const key of ['id', 'priority', 'match', 'effect']) {
      expect(messages).toContain(`rules[0]: missing required key "${key}"`);
    }
  });

  it('requires rule ids unique across the whole directory, naming the first use', () => {
    const { problems } = validateSet([policy('b.toml', `version = "1"\n${RULE}`), policy('a.toml', `version = "1"\n${RULE}`)]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ code: ERROR_CODES.POLICY_DUPLICATE_ID, file: 'b.toml', ruleId: 'r1', line: 4 });
    expect(problems[0]?.message).toContain('already used at a.toml:4');
  });

  it('compiles `matches` patterns and requires arrays for in/not_in', () => {
    const text = `version = "1"
[[rules]]
id = "r"
priority = 1
match = {}
effect = "deny"
conditions = [
  { field = "a", operator = "matches", value = "([a-" },
  { field = "b", operator = "in", value = "x" },
  { field = "c", operator = "not_in", value = ["ok"] },
  { field = "d", operator = "starts_with", value = 3 },
]
`;
    const { problems } = validateSet([policy('c.toml', text)]);
    expect(problems.map((p) => [p.code, p.line, p.path])).toEqual([
      [ERROR_CODES.POLICY_BAD_REGEX, 8, '/rules/0/conditions/0/value'],
      [ERROR_CODES.POLICY_BAD_VALUE, 9, '/rules/0/conditions/1/value'],
      [ERROR_CODES.POLICY_BAD_VALUE, 11, '/rules/0/conditions/3/value'],
    ]);
  });

  it('checks other config files for syntax only, and never counts them as policies', () => {
    const config: SourceFile = { path: '../nachos.toml', kind: 'config', content: Buffer.from('[anything]\nkey = 1\n') };
    expect(validateSet([config])).toEqual({ policies: [], ruleCount: 0, problems: [], warnings: [] });
    const broken: SourceFile = { ...config, content: Buffer.from('[anything\n') };
    expect(validateSet([broken]).problems[0]).toMatchObject({ code: ERROR_CODES.POLICY_SYNTAX, file: '../nachos.toml', line: 1 });
  });

  it('refuses text that is not UTF-8 and survives hostile input', () => {
    expect(validateSet([{ path: 'x.toml', kind: 'policy', content: Buffer.from([0xff, 0xfe]) }]).problems[0]?.message).toBe(
      'not valid UTF-8 text',
    );
    for (const text of ['a = ' + '['.repeat(5000), 'x = "\u0000"', 'rules = 5', 'version = 1\nrules = [1, "a", {}]']) {
      expect(() => validateSet([policy('h.toml', text)])).not.toThrow();
      expect(validateSet([policy('h.toml', text)]).problems.length).toBeGreaterThan(0);
    }
  });
});

describe('checkConditionValue', () => {
  it.each([
    ['equals', 'x', undefined],
    ['equals', ['x'], /use "in"/],
    ['in', ['a', 1, true], undefined],
    ['not_in', 'a', /needs an array/],
    ['contains', 'sub', undefined],
    ['ends_with', false, /needs a string/],
    ['matches', '^a.*$', undefined],
    ['matches', '(', /invalid regular expression/],
  ] as const)('%s with %j', (operator, value, expected) => {
    const message = checkConditionValue(operator, value);
    if (expected === undefined) expect(message).toBeUndefined();
    else expect(message).toMatch(expected);
  });
});

describe('YAML policies, as Nachos writes them', () => {
  const fixtures = path.resolve(import.meta.dirname, '../fixtures/nachos-style');
  const yaml = (name: string, text: string): SourceFile => ({ path: name, kind: 'policy', content: Buffer.from(text) });
  const fixture = (...names: string[]) => names.map((f) => yaml(f, readFileSync(path.join(fixtures, f), 'utf8')));

  it('takes the keys Nachos ignores as warnings, with file:line:col, and the file stays valid', () => {
    const result = validateSet(fixture('baseline.yaml'));
    expect(result.problems).toEqual([]);
    expect(result.ruleCount).toBe(5);
    expect(result.policies[0]?.document.rules[3]?.conditions?.map((c) => c.value)).toEqual([['standard', 'permissive'], 25]);
    expect(result.warnings.map((w) => [w.code, w.line, w.column, w.path, w.ruleId ?? null])).toEqual([
      [ERROR_CODES.POLICY_UNKNOWN_KEY, 10, 3, '/metadata/owner', null],
      [ERROR_CODES.POLICY_UNKNOWN_KEY, 33, 5, '/rules/1/audit', 'baseline-dm-paired'],
      [ERROR_CODES.POLICY_UNKNOWN_KEY, 57, 5, '/rules/3/audit', 'baseline-tool-search'],
      [ERROR_CODES.POLICY_UNKNOWN_KEY, 66, 5, '/rules/4/audit', 'baseline-tool-shell'],
      [ERROR_CODES.POLICY_UNKNOWN_KEY, 67, 5, '/rules/4/require_approval', 'baseline-tool-shell'],
    ]);
    expect(result.warnings[1]?.message).toBe('rules[1]: unknown key "audit"');
  });

  it('makes unknown keys errors with strictKeys, for teams that want a typo to stop a rollout', () => {
    const result = validateSet(fixture('baseline.yaml'), { strictKeys: true });
    expect(result.warnings).toEqual([]);
    expect(result.problems).toHaveLength(5);
    expect(result.policies).toEqual([]);
    const typo = validateSet([yaml('t.yaml', 'version: "1.0"\nrules:\n  - id: r\n    priority: 1\n    match: {}\n    efect: deny\n    effect: deny\n')], { strictKeys: true });
    expect(typo.problems).toMatchObject([{ line: 6, column: 5, message: 'rules[0]: unknown key "efect" (did you mean "effect"?)' }]);
  });

  it('keeps what Nachos refuses an error, saying that Nachos skips the whole file and which rules that loses', () => {
    const result = validateSet(fixture('baseline.yaml', 'sandbox.yml', 'workspace.yaml'));
    expect(result.problems.map((p) => [p.file, p.line, p.path])).toEqual([
      ['sandbox.yml', 9, '/rules/0/conditions/1/operator'],
      ['workspace.yaml', 30, '/rules/1/conditions/1/operator'],
    ]);
    expect(result.problems[0]?.message).toBe(
      'rules[0].conditions[1].operator: must be one of "equals", "not_equals", "in", "not_in", "contains", "matches", "starts_with", "ends_with", got "not_starts_with_any"; ' +
        "Nachos' own loader refuses this too and skips the whole of sandbox.yml: its 2 rules (1 allow, 1 deny) would not be in force",
    );
    expect(result.problems[1]?.message).toMatch(/got "less_than"; Nachos' own loader .* workspace\.yaml: its 3 rules \(2 allow, 1 deny\) would not be in force$/);
    // Only the valid file's documents are returned; the warnings of all three are.
    expect(result.policies.map((p) => p.path)).toEqual(['baseline.yaml']);
    expect(result.warnings.map((w) => w.file)).toEqual(['baseline.yaml', 'baseline.yaml', 'baseline.yaml', 'baseline.yaml', 'baseline.yaml', 'sandbox.yml', 'workspace.yaml', 'workspace.yaml']);
  });

  it('says of a TOML file only that Nachos never reads it, and of what Nachos would load that it would, and what its evaluator then does', () => {
    const bad = 'version = "1.0"\n[[rules]]\nid = "r"\npriority = 1\nmatch = {}\neffect = "allow"\nconditions = [{ field = "f", operator = "nope", value = 1 }]\n';
    const toml = validateSet([policy('a.toml', bad)]);
    expect(toml.problems[0]?.message).not.toMatch(/Nachos/);
    expect(toml.warnings).toMatchObject([{ code: ERROR_CODES.POLICY_NOT_READ, message: "Nachos' loader reads only *.yaml and *.yml: the rule in a.toml is not in force in a Nachos gateway" }]);
    // A regular expression that does not compile: Nachos' validator never looks, so it would load the file; its evaluator never matches it.
    const regex = 'version: "1"\nrules:\n  - id: r\n    priority: 1\n    match: {}\n    conditions: [{ field: f, operator: matches, value: "(" }]\n    effect: allow\n';
    expect(validateSet([yaml('r.yaml', regex)]).problems[0]?.message).toMatch(
      /; Nachos' loader would load r\.yaml, and its evaluator catches the invalid pattern and takes it as no match: the condition never holds, and the rule never applies$/,
    );
  });

  it('with skipInvalid, lets no invalid file claim a rule id that a valid file uses', () => {
    const first = yaml('a.yaml', 'version: "1.0"\nrules:\n  - id: shared\n    priority: 1\n    match: {}\n    effect: nope\n');
    const second = yaml('b.yaml', 'version: "1.0"\nrules:\n  - id: shared\n    priority: 1\n    match: {}\n    effect: deny\n');
    expect(validateSet([first, second]).problems.map((p) => [p.file, p.code])).toEqual([
      ['a.yaml', ERROR_CODES.POLICY_SCHEMA],
      ['b.yaml', ERROR_CODES.POLICY_DUPLICATE_ID],
    ]);
    const skipping = validateSet([first, second], { skipInvalid: true });
    expect(skipping.problems.map((p) => p.file)).toEqual(['a.yaml']);
    expect(skipping.policies.map((p) => p.path)).toEqual(['b.yaml']);
  });

  it('reports YAML syntax errors and schema errors with line and column', () => {
    const syntax = validateSet([yaml('a.yaml', 'version: "1.0"\nrules: [\n  - id: x\n')]).problems[0];
    expect(syntax).toMatchObject({ code: ERROR_CODES.POLICY_SYNTAX, file: 'a.yaml', line: expect.any(Number) });
    expect(syntax?.message).toMatch(/^YAML syntax: /);
    const text = 'version: "1.0"\nrules:\n  - id: r1\n    priority: high\n    match:\n      resource: tools\n    effect: allow\n';
    const problems = validateSet([yaml('b.yml', text)]).problems;
    expect(problems.map((p) => [p.path, p.line, p.column, p.ruleId])).toEqual([
      ['/rules/0/priority', 4, 5, 'r1'],
      ['/rules/0/match/resource', 6, 7, 'r1'],
    ]);
  });

  it('refuses duplicate keys, and alias bombs without expanding them', () => {
    expect(validateSet([yaml('d.yaml', 'version: "1.0"\nversion: "2.0"\nrules: []\n')]).problems[0]?.message).toMatch(/YAML syntax: .*unique/i);
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...'bcdefghij'.split('').map((k, i) => `${k}: &${k} [${Array(10).fill(`*${'abcdefghij'[i]}`).join(', ')}]`)].join('\n');
    const started = performance.now();
    const [problem] = validateSet([yaml('bomb.yaml', bomb)]).problems;
    expect(problem?.message).toMatch(/YAML could not be parsed: .*alias/i);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('checks rule ids across TOML and YAML files alike', () => {
    const toml: SourceFile = { path: 'a.toml', kind: 'policy', content: Buffer.from(`version = "1.0"\n${RULE}`) };
    const problems = validateSet([toml, yaml('b.yaml', 'version: "1.0"\nrules:\n  - id: r1\n    priority: 1\n    match: {}\n    effect: deny\n')]).problems;
    expect(problems).toMatchObject([{ code: ERROR_CODES.POLICY_DUPLICATE_ID, file: 'b.yaml', line: 3, message: expect.stringContaining('a.toml:4') }]);
  });
});

describe('nesting that no policy needs', () => {
  it('is refused before it reaches a parser, however often it is read (a second deep YAML parse used to abort Node)', () => {
    const deepYaml = `${'- '.repeat(1300)}x`;
    for (let i = 0; i < 3; i++) {
      const [problem] = validateSet([{ path: 'deep.yaml', kind: 'policy', content: Buffer.from(deepYaml) }]).problems;
      expect(problem).toMatchObject({ code: ERROR_CODES.POLICY_SYNTAX, line: 1, message: 'YAML nested deeper than 64 levels' });
    }
    const flow = `a: ${'['.repeat(100)}1${']'.repeat(100)}`;
    expect(validateSet([{ path: 'f.yml', kind: 'policy', content: Buffer.from(flow) }]).problems[0]?.message).toMatch(/nested deeper/);
    const deepToml = `a = ${'['.repeat(100)}1${']'.repeat(100)}`;
    expect(validateSet([{ path: 't.toml', kind: 'policy', content: Buffer.from(deepToml) }]).problems[0]?.code).toBe(ERROR_CODES.POLICY_SYNTAX);
  });
});

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { resolveConfig } from '../../src/config/resolve.js';
import { ERROR_CODES } from '../../src/errors.js';
import { loadFiles } from '../../src/policy/load.js';
import { buildSnapshot, type Snapshot } from '../../src/policy/snapshot.js';
import { validateSet } from '../../src/policy/validate.js';
import { importNachos, NACHOS_REPO, nachosAvailable } from '../helpers/nachos-reader.js';

/**
 * The example policies this project ships (policies/) are what a Nachos
 * gateway is given: they must be valid here, and loaded whole by Nachos' own
 * PolicyLoader, which reads only `*.yaml` and `*.yml`. The TOML example
 * (examples/bus-consumer.toml) is for bus subscribers, and must be valid too.
 */
const ROOT = path.resolve(import.meta.dirname, '../..');
const POLICIES = path.join(ROOT, 'policies');
const BUS_CONSUMER = path.join(ROOT, 'examples/bus-consumer.toml');
const SHIPPED = ['permissive.yaml', 'standard.yaml', 'strict.yaml'];

/** What `nachos-sentinel validate policies` checks, with the daemon's own defaults. */
async function validateShipped(): Promise<Snapshot> {
  const config = resolveConfig({ flags: { policies: POLICIES }, env: {}, cwd: ROOT });
  const loaded = await loadFiles({ dir: config.policies, extraFiles: [], maxFileBytes: config.maxFileBytes });
  const result = buildSnapshot(loaded.sources, loaded.problems, { allowEmpty: false, strictKeys: config.strictKeys, invalidFiles: config.invalidFiles });
  if (!result.ok) throw new Error(`the shipped policies are refused: ${result.rejection.problems.map((p) => `${p.file}:${p.line ?? ''}: ${p.message}`).join('; ')}`);
  return result.snapshot;
}

const ruleIds = (snapshot: Snapshot) => snapshot.policies.flatMap((p) => p.document.rules.map((r) => r.id)).sort();

describe('the shipped policies/', () => {
  it('holds only the YAML files strict, standard and permissive: what Nachos reads', () => {
    expect(readdirSync(POLICIES).sort()).toEqual(SHIPPED);
  });

  it('validates with this project\'s validator: no problem, no warning, every rule counted', async () => {
    const snapshot = await validateShipped();
    expect(snapshot.files.map((f) => f.path)).toEqual(SHIPPED);
    expect(snapshot.skipped).toEqual([]);
    expect(snapshot.warnings).toEqual([]);
    expect(snapshot.policies.map((p) => p.document.metadata?.mode)).toEqual(['permissive', 'standard', 'strict']);
    expect(snapshot.ruleCount).toBe(ruleIds(snapshot).length);
    expect(snapshot.ruleCount).toBeGreaterThan(0);
  });

  it('examples/bus-consumer.toml validates too (warned of only as a file Nachos does not read), and is the standard policy of policies/standard.yaml', () => {
    const result = validateSet([{ path: 'bus-consumer.toml', kind: 'policy', content: readFileSync(BUS_CONSUMER) }]);
    expect(result.problems).toEqual([]);
    expect(result.warnings.filter((w) => w.code !== ERROR_CODES.POLICY_NOT_READ)).toEqual([]);
    expect(result.ruleCount).toBeGreaterThan(0);
    expect(result.policies[0]?.document).toEqual(parseYaml(readFileSync(path.join(POLICIES, 'standard.yaml'), 'utf8')));
  });
});

type LoadedDocument = { rules: { id: string }[] };
type LoaderModule = {
  PolicyLoader: new (c: { policiesPath: string; enableHotReload: boolean }) => { load(): [LoadedDocument[], { file: string; message: string }[]] };
};

describe.skipIf(!nachosAvailable)(`Nachos' own PolicyLoader on the shipped files (skipped without Nachos' repository at ${NACHOS_REPO}, NACHOS_REPO)`, () => {
  // Nachos logs every step on the console: kept quiet here.
  beforeEach(() => {
    for (const method of ['log', 'warn', 'error'] as const) vi.spyOn(console, method).mockImplementation(() => undefined);
  });
  afterEach(() => vi.restoreAllMocks());

  const loader = async (dir: string) => {
    const { PolicyLoader } = await importNachos<LoaderModule>('packages/core/gateway/src/salsa/policy/loader.ts');
    return new PolicyLoader({ policiesPath: dir, enableHotReload: false });
  };

  it('loads all three files of policies/, without an error, and exactly the rule ids this project\'s validator counts', async () => {
    const [documents, errors] = (await loader(POLICIES)).load();
    expect(errors).toEqual([]);
    expect(documents).toHaveLength(SHIPPED.length);
    const snapshot = await validateShipped();
    const loaded = documents.flatMap((d) => d.rules.map((r) => r.id)).sort();
    expect(loaded).toEqual(ruleIds(snapshot));
    expect(loaded).toHaveLength(snapshot.ruleCount);
  });

  it('loads nothing from examples/: the TOML example is for bus subscribers, never for the gateway', async () => {
    const [documents, errors] = (await loader(path.dirname(BUS_CONSUMER))).load();
    expect(errors).toEqual([]);
    expect(documents).toEqual([]);
  });
});

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { parse as parseToml } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { SCHEMAS, jsonSchema } from '../../src/cli/schema.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const committed = (name: string) => JSON.parse(readFileSync(path.join(ROOT, 'schemas', `${name}.schema.json`), 'utf8')) as object;
// Plain data, as a JSON tool would see the TOML (smol-toml's tables have no prototype).
const tomlFile = (file: string) => JSON.parse(JSON.stringify(parseToml(readFileSync(file, 'utf8')))) as unknown;

describe('the published JSON Schemas', () => {
  it.each(Object.keys(SCHEMAS))('schemas/%s.schema.json is what the code validates with (run `npm run schemas` after a change)', (name) => {
    expect(committed(name)).toEqual(jsonSchema(SCHEMAS[name as keyof typeof SCHEMAS]()));
  });

  it('accepts the shipped policies and refuses a broken one, as a strict JSON Schema validator', () => {
    const check = new Ajv({ strict: true, allErrors: true }).compile(committed('policy'));
    const dir = path.join(ROOT, 'policies');
    const shipped = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));
    expect(shipped).toHaveLength(3);
    for (const file of shipped) {
      expect(check(parseYaml(readFileSync(path.join(dir, file), 'utf8'))), `${file}: ${JSON.stringify(check.errors)}`).toBe(true);
    }
    expect(check(tomlFile(path.join(ROOT, 'examples/bus-consumer.toml'))), `bus-consumer.toml: ${JSON.stringify(check.errors)}`).toBe(true);
    expect(check({ version: '1.0', rules: [{ id: 'x', priority: 1, match: { resource: 'tools' }, effect: 'allow' }] })).toBe(false);
    expect(check({ version: '1.0', rules: [], efect: 'x' })).toBe(false);
  });

  it('accepts the example config of docs/configuration.md and refuses an unknown key', () => {
    const readme = readFileSync(path.join(ROOT, 'docs/configuration.md'), 'utf8');
    const example = /```toml\n(# sentinel\.toml\n[\s\S]*?)```/.exec(readme)?.[1];
    expect(example).toBeDefined();
    const check = new Ajv({ strict: true, allErrors: true }).compile(committed('config'));
    expect(check(JSON.parse(JSON.stringify(parseToml(example ?? '')))), JSON.stringify(check.errors)).toBe(true);
    expect(check({ quiet_windw: '50ms' })).toBe(false);
  });
});

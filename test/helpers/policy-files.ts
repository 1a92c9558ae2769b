import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from './temp-dir.js';

/** A valid policy document with the given rule ids (ids must be unique across a directory). */
export function policyText(...ids: string[]): string {
  const rules = ids.map(
    (id, i) => `[[rules]]\nid = "${id}"\npriority = ${100 - i}\nmatch = { resource = "tool", resourceId = "t-${id}" }\neffect = "allow"\n`,
  );
  return `version = "1.0"\n\n[metadata]\nname = "test"\nmode = "standard"\n\n${rules.join('\n')}`;
}

/** A valid policy in Nachos' own YAML, with the given rule ids (unique across a directory). */
export function policyYaml(...ids: string[]): string {
  const rules = ids.map((id, i) => `  - id: ${id}\n    priority: ${100 - i}\n    match:\n      resource: tool\n      resourceId: t-${id}\n    effect: allow\n`);
  return `version: "1.0"\nmetadata:\n  name: test\n  mode: standard\nrules:\n${rules.join('')}`;
}

/** Writes like an editor's atomic save: a temporary file, then a rename over the target. */
export function atomicWrite(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/** A fresh temporary root holding `policies/a.toml` (one valid rule, `a1`); `cleanup` removes it all. */
export function policyDir(): { root: string; dir: string; cleanup: () => void } {
  const { dir: root, cleanup } = tempDir();
  const dir = path.join(root, 'policies');
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'a.toml'), policyText('a1'));
  return { root, dir, cleanup };
}

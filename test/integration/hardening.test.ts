import { spawn } from 'node:child_process';
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect } from 'vitest';
import { ERROR_CODES } from '../../src/errors.js';
import { computeRevision } from '../../src/policy/revision.js';
import { digestFiles } from '../../src/policy/snapshot.js';
import { SUBJECTS } from '../../src/protocol/topics.js';
import { test, type Flags } from '../helpers/fixtures.js';
import { KubeletVolume } from '../helpers/kubelet.js';
import { policyText } from '../helpers/policy-files.js';
import { shellRevision } from '../helpers/revision.js';
import { quietFor, until } from '../helpers/until.js';

/** This file's helpers: every reload and rejection heard, and a sentinel on a directory of the test's making. */
const it = test
  .extend('listener', async ({ listen }) => listen([SUBJECTS.policyReload, SUBJECTS.policyRejected]))
  .extend('start', async ({ sentinel }) => async (dir: string, flags: Flags = {}) => {
    const running = await sentinel({ policies: dir, 'rescan-interval': '0', ...flags });
    await running.connected();
    return running;
  })
  .extend('reloads', async ({ listener }) => () => listener.on(SUBJECTS.policyReload).map((e) => e.payload as { revision: string; reason: string }));

/** Attacks and accidents from the second hardening round, on the policy side: each failed before its fix. */
describe('hardening: what reaches the bus from the policy directory', () => {
  // Each test makes its own directory (a ConfigMap, a link, ...) under root: `dir` only names where.
  it.override('dir', async ({ root }) => path.join(root, 'policies'));

  const revisionOf = (files: Record<string, string>) =>
    computeRevision(digestFiles(Object.entries(files).map(([p, t]) => ({ path: p, kind: 'policy' as const, content: Buffer.from(t) }))));
  const yamlRule = (id: string, effect = 'allow') => `  - id: ${id}\n    priority: 1\n    match: { resource: tool }\n    effect: ${effect}\n`;
  const yamlDoc = (...rules: string[]) => `version: "1.0"\nrules:\n${rules.join('') || '  []\n'}`.replace('rules:\n  []', 'rules: []');

  it('reads a ConfigMap volume in kubelet\'s order as whole versions only: keys added, moved and removed', async ({ root, listener, start, reloads }) => {
    const dir = path.join(root, 'configmap');
    mkdirSync(dir);
    const volume = new KubeletVolume(dir, 120);
    const v1 = { 'a.yaml': yamlDoc(yamlRule('keep'), yamlRule('deny-shell', 'deny')), 'b.yaml': yamlDoc(yamlRule('b')) };
    // The deny rule moves into a new key, c.yaml.
    const v2 = { 'a.yaml': yamlDoc(yamlRule('keep')), 'b.yaml': v1['b.yaml'], 'c.yaml': yamlDoc(yamlRule('deny-shell', 'deny')) };
    // b.yaml is deleted.
    const v3 = { 'a.yaml': v2['a.yaml'], 'c.yaml': v2['c.yaml'] };
    await volume.write(v1);
    await start(dir);
    await listener.waitFor(SUBJECTS.policyReload, 1);
    await volume.write(v2);
    await volume.write(v3);
    await until(() => reloads().some((r) => r.revision === revisionOf(v3)), 5000, 'the last version');
    await quietFor(300);
    const versions = [revisionOf(v1), revisionOf(v2), revisionOf(v3)];
    // Every announced set existed as a whole; each version was announced; nothing was rejected.
    expect(reloads().map((r) => versions.indexOf(r.revision))).toEqual([0, 1, 2]);
    expect(listener.on(SUBJECTS.policyRejected)).toEqual([]);
  });

  it('watches a policy directory given as a symlink, and follows it when it is re-pointed', async ({ root, listener, start, reloads }) => {
    const v1 = path.join(root, 'v1');
    const v2 = path.join(root, 'v2');
    for (const d of [v1, v2]) mkdirSync(d);
    writeFileSync(path.join(v1, 'a.toml'), policyText('one'));
    writeFileSync(path.join(v2, 'a.toml'), policyText('two'));
    const link = path.join(root, 'policies');
    symlinkSync('v1', link);
    // No rescan: only the watcher can see these.
    await start(link);
    await listener.waitFor(SUBJECTS.policyReload, 1);
    writeFileSync(path.join(v1, 'a.toml'), policyText('one', 'more'));
    await listener.waitFor(SUBJECTS.policyReload, 2, 3000);
    expect(reloads().at(-1)?.revision).toBe(shellRevision(v1));
    // As deployment tools swap a release: a new link renamed over the old one.
    symlinkSync('v2', path.join(root, 'tmp'));
    renameSync(path.join(root, 'tmp'), link);
    await listener.waitFor(SUBJECTS.policyReload, 3, 3000);
    expect(reloads().at(-1)?.revision).toBe(shellRevision(v2));
    writeFileSync(path.join(v2, 'a.toml'), policyText('two', 'more'));
    await listener.waitFor(SUBJECTS.policyReload, 4, 3000);
    expect(reloads().at(-1)?.revision).toBe(shellRevision(v2));
  });

  it('waits for a writer that pauses mid-file while it holds the file open, and never announces the first half', async ({ root, listener, start, reloads }) => {
    const dir = path.join(root, 'policies');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'a.toml'), policyText('a1'));
    await start(dir);
    await listener.waitFor(SUBJECTS.policyReload, 1);
    // The first half is a valid policy on its own: only the open descriptor tells it is unfinished.
    const whole = policyText('w1', 'w2');
    const half = whole.slice(0, whole.indexOf('[[rules]]', whole.indexOf('[[rules]]') + 1));
    const script = `const fs = require('fs'); const fd = fs.openSync(process.argv[1], 'w'); fs.writeSync(fd, process.argv[2]);
      setTimeout(() => { fs.writeSync(fd, process.argv[3]); fs.closeSync(fd); }, 400);`;
    const writer = spawn(process.execPath, ['-e', script, path.join(dir, 'w.toml'), half, whole.slice(half.length)], { stdio: 'ignore' });
    await new Promise((resolve) => writer.once('exit', resolve));
    await listener.waitFor(SUBJECTS.policyReload, 2, 5000);
    await quietFor(300);
    const halfDir = path.join(root, 'half');
    mkdirSync(halfDir);
    writeFileSync(path.join(halfDir, 'a.toml'), policyText('a1'));
    writeFileSync(path.join(halfDir, 'w.toml'), half);
    expect(reloads().map((r) => r.revision)).not.toContain(shellRevision(halfDir));
    expect(reloads().at(-1)?.revision).toBe(shellRevision(dir));
    expect(reloads()).toHaveLength(2);
  });

  it('refuses a file name that would forge a sha256sum line, and says what is wrong with a name that is not UTF-8', async ({ root, listener, start }) => {
    const dir = path.join(root, 'policies');
    mkdirSync(dir);
    const b = policyText('b1');
    writeFileSync(path.join(dir, 'a.toml'), policyText('a1'));
    await start(dir);
    const [first] = await listener.waitFor(SUBJECTS.policyReload, 1);
    // This one name makes the same sha256sum lines as the pair a.toml, b.toml.
    const forged = `a.toml\n${digestFiles([{ path: 'b.toml', kind: 'policy', content: Buffer.from(b) }])[0]?.sha256}  b.toml`;
    writeFileSync(path.join(dir, forged), b);
    const [rejected] = await listener.waitFor(SUBJECTS.policyRejected, 1);
    expect(rejected?.payload).toMatchObject({
      inForce: first?.payload.revision,
      errors: [{ code: ERROR_CODES.POLICY_BAD_NAME, file: JSON.stringify(forged).slice(1, -1), message: expect.stringContaining('control character') }],
    });
    writeFileSync(Buffer.from([...Buffer.from(`${dir}/`), 0xff, 0x2e, 0x74, 0x6f, 0x6d, 0x6c]), b);
    await listener.waitFor(SUBJECTS.policyRejected, 2);
    expect(listener.on(SUBJECTS.policyRejected)[1]?.payload.errors).toContainEqual(
      expect.objectContaining({ code: ERROR_CODES.POLICY_BAD_NAME, message: 'file name is not valid UTF-8 text; rename it' }),
    );
  });
});

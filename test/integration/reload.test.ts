import {
  closeSync,
  copyFileSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { describe, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { Envelope } from '../../src/protocol/envelope.js';
import { ERROR_CODES } from '../../src/errors.js';
import type { PolicyReloadPayload } from '../../src/policy/announcements.js';
import { fetchReloadBody } from '../../src/subscriber/fetch-reload-body.js';
import { SUBJECTS } from '../../src/protocol/topics.js';
import { doc } from '../helpers/docs.js';
import { signingKey } from '../helpers/signing.js';
import { test, type Flags } from '../helpers/fixtures.js';
import { atomicWrite, policyText } from '../helpers/policy-files.js';
import { shellRevision } from '../helpers/revision.js';
import { quietFor, until } from '../helpers/until.js';

/** This file's helpers: every reload and rejection heard, a sentinel on the test's directory, and files written into it. */
const it = test
  .extend('listener', async ({ listen }) => listen([SUBJECTS.policyReload, SUBJECTS.policyRejected]))
  .extend('start', async ({ dir, sentinel }) => async (flags: Flags = {}) => {
    const running = await sentinel({ policies: dir, ...flags });
    await running.connected();
    return running;
  })
  .extend('reloads', async ({ listener }) => () => listener.on(SUBJECTS.policyReload).map((e) => e.payload))
  .extend('rejections', async ({ listener }) => () => listener.on(SUBJECTS.policyRejected).map((e) => e.payload))
  .extend('write', async ({ dir }) => (name: string, text: string) => writeFileSync(path.join(dir, name), text))
  .extend('lastReload', async ({ reloads }) => () => reloads().at(-1));

describe('policy reload, end to end', () => {
  // Each test writes the files it needs: the directory starts empty.
  it.override('dir', async ({ root }) => {
    const dir = path.join(root, 'policies');
    mkdirSync(dir);
    return dir;
  });

  it('announces the set at startup, with the whole payload in a Nachos envelope', async ({ dir, listener, start, write }) => {
    write('a.toml', policyText('a1', 'a2'));
    write('b.toml', policyText('b1'));
    await start();
    const [env] = await listener.waitFor(SUBJECTS.policyReload);
    expect(env).toMatchObject({ type: 'system.policy.reload', source: 'sentinel' });
    expect(Date.parse(env?.timestamp ?? '')).not.toBeNaN();
    expect(env?.payload).toMatchObject({
      schemaVersion: 3,
      revision: shellRevision(dir),
      previous: null,
      sequence: 1,
      reason: 'startup',
      changed: { added: ['a.toml', 'b.toml'], modified: [], removed: [] },
      counts: { files: 2, policyFiles: 2, rules: 3 },
    });
    const payload = env?.payload as { files: { path: string; bytes: number }[]; policies: { path: string; document: unknown }[] };
    expect(payload.files.map((f) => [f.path, f.bytes])).toEqual([
      ['a.toml', policyText('a1', 'a2').length],
      ['b.toml', policyText('b1').length],
    ]);
    expect(payload.policies[1]).toMatchObject({ path: 'b.toml', document: { version: '1.0', rules: [{ id: 'b1' }] } });
  });

  it('announces each change once, and nothing for a touch that changes no byte', async ({ dir, listener, start, reloads, write, lastReload }) => {
    write('a.toml', policyText('a1'));
    const running = await start();
    await listener.waitFor(SUBJECTS.policyReload, 1);
    const first = lastReload();

    write('a.toml', policyText('a1', 'a2'));
    await listener.waitFor(SUBJECTS.policyReload, 2);
    expect(lastReload()).toMatchObject({
      reason: 'change',
      sequence: 2,
      previous: first?.revision,
      revision: shellRevision(dir),
      changed: { added: [], modified: ['a.toml'], removed: [] },
    });

    const appliesBefore = running.applies.length ?? 0;
    const now = new Date();
    utimesSync(path.join(dir, 'a.toml'), now, now);
    write('a.toml', policyText('a1', 'a2')); // same bytes again
    await until(() => running.applies.slice(appliesBefore).some((a) => a.outcome === 'unchanged'), 5000, 'an unchanged apply');
    await quietFor(200);
    expect(reloads()).toHaveLength(2);
  });

  it('follows atomic saves, deletes and re-creations', async ({ dir, listener, start, write, lastReload }) => {
    write('a.toml', policyText('a1'));
    write('b.toml', policyText('b1'));
    await start();
    await listener.waitFor(SUBJECTS.policyReload, 1);

    atomicWrite(path.join(dir, 'a.toml'), policyText('a1', 'a9'));
    await listener.waitFor(SUBJECTS.policyReload, 2);
    expect(lastReload()?.changed).toEqual({ added: [], modified: ['a.toml'], removed: [] });

    unlinkSync(path.join(dir, 'b.toml'));
    await listener.waitFor(SUBJECTS.policyReload, 3);
    expect(lastReload()?.changed).toEqual({ added: [], modified: [], removed: ['b.toml'] });

    write('b.toml', policyText('b2'));
    await listener.waitFor(SUBJECTS.policyReload, 4);
    expect(lastReload()).toMatchObject({ changed: { added: ['b.toml'], modified: [], removed: [] }, revision: shellRevision(dir) });
  });

  it('rejects an invalid set, keeps the revision in force, and recovers when it is fixed', async ({ dir, listener, start, reloads, rejections, write, lastReload }) => {
    write('a.toml', policyText('a1'));
    const running = await start();
    await listener.waitFor(SUBJECTS.policyReload, 1);
    const good = lastReload()?.revision;

    write('b.toml', 'version = "1.0"\n[[rules]]\nid = "b1"\npriority = 1\nmatch = { resource = "tool" }\neffect = "maybe"\n');
    const [rejected] = await listener.waitFor(SUBJECTS.policyRejected, 1);
    expect(rejected?.type).toBe('system.policy.rejected');
    expect(rejected?.payload).toMatchObject({
      schemaVersion: 3,
      inForce: good,
      revision: shellRevision(dir),
      errors: [{ code: ERROR_CODES.POLICY_SCHEMA, file: 'b.toml', line: 6, ruleId: 'b1', path: '/rules/0/effect' }],
    });
    expect(running.sentinel.reloader.inForce?.revision).toBe(good);
    expect(running.lines.some((l) => l.level === 50 && String(l.msg).startsWith('policy set rejected'))).toBe(true);

    // A syntax error in the same file is a new rejection, with line and column.
    write('b.toml', 'version = "1.0"\n[[rules]\n');
    await listener.waitFor(SUBJECTS.policyRejected, 2);
    expect(rejections()[1]).toMatchObject({ errors: [{ code: ERROR_CODES.POLICY_SYNTAX, file: 'b.toml', line: 2 }] });
    expect(reloads()).toHaveLength(1);

    write('b.toml', policyText('b1'));
    await listener.waitFor(SUBJECTS.policyReload, 2);
    expect(lastReload()).toMatchObject({ reason: 'change', previous: good, revision: shellRevision(dir), sequence: 2 });
  });

  it('never announces a file written in chunks half-written', async ({ dir, listener, start, reloads, write, lastReload }) => {
    // Every prefix that ends after a rule is itself a valid policy: only timing can keep it out.
    const ids = Array.from({ length: 8 }, (_, i) => `c${i}`);
    const full = policyText(...ids);
    const chunks = full.split(/(?=\[\[rules\]\])/);
    write('a.toml', policyText('start'));
    await start();
    await listener.waitFor(SUBJECTS.policyReload, 1);

    const fd = openSync(path.join(dir, 'a.toml'), 'w');
    for (const chunk of chunks) {
      writeSync(fd, chunk);
      await new Promise((r) => setTimeout(r, 5));
    }
    closeSync(fd);
    await listener.waitFor(SUBJECTS.policyReload, 2);
    await quietFor(300);
    expect(reloads().map((r) => r.revision)).toEqual([reloads()[0]?.revision, shellRevision(dir)]);
    expect(lastReload()?.counts).toMatchObject({ rules: 8 });
  });

  it('coalesces 200 rapid writes, and the last announcement is the final contents', async ({ dir, listener, start, reloads, write, lastReload }) => {
    write('a.toml', policyText('a0'));
    await start();
    await listener.waitFor(SUBJECTS.policyReload, 1);
    for (let i = 1; i <= 200; i++) {
      write(`f${i % 10}.toml`, policyText(`w${i % 10}-${i}`));
      if (i % 20 === 0) await new Promise((r) => setImmediate(r));
    }
    const final = shellRevision(dir);
    await until(() => lastReload()?.revision === final, 10_000, 'the final revision');
    await quietFor(300);
    expect(lastReload()?.revision).toBe(final);
    expect(reloads().length).toBeLessThan(20);
  });

  it('publishes a Kubernetes ConfigMap swap at once, without waiting for quiet', async ({ dir, listener, start, lastReload }) => {
    // The layout kubelet makes: files are links through ..data to a timestamped directory.
    mkdirSync(path.join(dir, '..2026_11_27_01'));
    writeFileSync(path.join(dir, '..2026_11_27_01', 'a.toml'), policyText('k1'));
    symlinkSync('..2026_11_27_01', path.join(dir, '..data'));
    symlinkSync('..data/a.toml', path.join(dir, 'a.toml'));
    const running = await start({ 'quiet-window': '10s', 'max-wait': '20s' });
    await listener.waitFor(SUBJECTS.policyReload, 1);

    mkdirSync(path.join(dir, '..2026_11_27_02'));
    writeFileSync(path.join(dir, '..2026_11_27_02', 'a.toml'), policyText('k1', 'k2'));
    symlinkSync('..2026_11_27_02', path.join(dir, '..data_tmp'));
    renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    rmSync(path.join(dir, '..2026_11_27_01'), { recursive: true });

    // A 10 s quiet window: arriving within 5 s means it did not wait for quiet.
    await listener.waitFor(SUBJECTS.policyReload, 2, 5000);
    expect(lastReload()).toMatchObject({ revision: shellRevision(dir), changed: { modified: ['a.toml'] } });
    expect(running.applies.some((a) => a.context.trigger === 'swap' && a.outcome === 'accepted')).toBe(true);
  });

  it('waits for a policy directory that does not exist yet', async ({ dir, listener, start, rejections, write, lastReload }) => {
    rmSync(dir, { recursive: true });
    const running = await start();
    await quietFor(200);
    expect(listener.messages).toEqual([]);
    expect(running.lines.some((l) => l.msg === 'waiting for the policy directory to appear')).toBe(true);

    mkdirSync(dir);
    write('a.toml', policyText('late'));
    await listener.waitFor(SUBJECTS.policyReload, 1);
    expect(lastReload()).toMatchObject({ reason: 'startup', revision: shellRevision(dir) });
    expect(rejections()).toEqual([]);
  });

  it('survives the directory being removed and recreated', async ({ dir, listener, start, write, lastReload }) => {
    write('a.toml', policyText('a1'));
    await start();
    await listener.waitFor(SUBJECTS.policyReload, 1);
    const good = lastReload()?.revision;

    rmSync(dir, { recursive: true });
    const [rejected] = await listener.waitFor(SUBJECTS.policyRejected, 1);
    expect(rejected?.payload).toMatchObject({ inForce: good, errors: [{ code: ERROR_CODES.POLICY_DIR_MISSING }] });

    mkdirSync(dir);
    write('a.toml', policyText('a1', 'again'));
    await listener.waitFor(SUBJECTS.policyReload, 2);
    expect(lastReload()).toMatchObject({ previous: good, revision: shellRevision(dir) });

    // The new directory is watched, not just rescanned.
    write('b.toml', policyText('b1'));
    await listener.waitFor(SUBJECTS.policyReload, 3);
  });

  it('rejects an empty directory unless allowed', async ({ listener, start, lastReload }) => {
    const first = await start();
    const [rejected] = await listener.waitFor(SUBJECTS.policyRejected, 1);
    expect(rejected?.payload).toMatchObject({ inForce: null, errors: [{ code: ERROR_CODES.POLICY_EMPTY }] });
    const reply = await listener.nc.request(SUBJECTS.policyCurrent, '', { timeout: 2000 });
    expect(reply.json<{ payload: unknown }>().payload).toMatchObject({ schemaVersion: 3, error: { code: ERROR_CODES.NO_SNAPSHOT } });
    await first.close();

    listener.messages.length = 0;
    await start({ 'allow-empty': true });
    await listener.waitFor(SUBJECTS.policyReload, 1);
    expect(lastReload()).toMatchObject({ counts: { files: 0, rules: 0 }, reason: 'startup' });
  });

  it('watches other TOML files named in the config, and checks their syntax', async ({ root, listener, start, write, lastReload }) => {
    write('a.toml', policyText('a1'));
    const nachos = path.join(root, 'nachos.toml');
    writeFileSync(nachos, '[security]\nmode = "standard"\n');
    await start({ 'watch-file': [nachos] });
    await listener.waitFor(SUBJECTS.policyReload, 1);
    expect(lastReload()?.files).toMatchObject([{ path: '../nachos.toml', kind: 'config' }, { path: 'a.toml', kind: 'policy' }]);

    writeFileSync(nachos, '[security]\nmode = "strict"\n');
    await listener.waitFor(SUBJECTS.policyReload, 2);
    expect(lastReload()?.changed).toEqual({ added: [], modified: ['../nachos.toml'], removed: [] });

    writeFileSync(nachos, '[security\n');
    const [rejected] = await listener.waitFor(SUBJECTS.policyRejected, 1);
    expect(rejected?.payload).toMatchObject({ errors: [{ code: ERROR_CODES.POLICY_SYNTAX, file: '../nachos.toml', line: 1 }] });
  });

  it('catches by periodic rescan what the watcher cannot see', async ({ dir, listener, start, lastReload }) => {
    // A link to a file in a subdirectory: its edits make no event in the (watched) directory itself.
    mkdirSync(path.join(dir, 'sub'));
    const outside = path.join(dir, 'sub', 'o.toml');
    writeFileSync(outside, policyText('o1'));
    symlinkSync('sub/o.toml', path.join(dir, 'o.toml'));
    const running = await start({ 'rescan-interval': '200ms' });
    await listener.waitFor(SUBJECTS.policyReload, 1);

    writeFileSync(outside, policyText('o1', 'o2'));
    await listener.waitFor(SUBJECTS.policyReload, 2);
    expect(lastReload()?.revision).toBe(shellRevision(dir));
    expect(running.applies.some((a) => a.context.trigger === 'rescan' && a.outcome === 'accepted')).toBe(true);
  });

  it('recovers loudly: a reload with reason "recovered" when the files come back to the revision in force', async ({ dir, listener, start, write, lastReload }) => {
    write('a.toml', policyText('a1'));
    const running = await start();
    await listener.waitFor(SUBJECTS.policyReload, 1);
    const good = lastReload();
    write('b.toml', 'version = "1.0"\n[[rules]]\nid = "b1"\n');
    const [rejected] = await listener.waitFor(SUBJECTS.policyRejected, 1);
    // reject-set: the rejection says the other way exists.
    expect(rejected?.payload.hint).toMatch(/invalid_files = "skip-file" \(--invalid-files skip-file/);
    expect(running.lines.find((l) => String(l.msg).startsWith('policy set rejected'))?.msg).toMatch(/invalid_files = "skip-file"/);
    unlinkSync(path.join(dir, 'b.toml'));
    await listener.waitFor(SUBJECTS.policyReload, 2);
    expect(lastReload()).toMatchObject({ reason: 'recovered', revision: good?.revision, sequence: good?.sequence, previous: null });
    expect(running.sentinel.reloader.lastRejection).toBeUndefined();
  });

  it('carries each file\'s exact bytes, so a subscriber applies exactly what was validated', async ({ dir, listener, start, write }) => {
    write('a.toml', policyText('a1'));
    write('b.yaml', 'version: "1.0" # é\nrules: []\n');
    await start();
    const [env] = await listener.waitFor(SUBJECTS.policyReload, 1);
    const files = env?.payload.files as { path: string; content: string; sha256: string }[];
    for (const f of files) {
      expect(f.content).toBe(readFileSync(path.join(dir, f.path), 'utf8'));
      expect(createHash('sha256').update(f.content).digest('hex')).toBe(f.sha256);
    }
    expect(env?.payload).toMatchObject({ schemaVersion: 3, issuedAt: env?.timestamp, deployment: '' });
    // The statement holds a day by default.
    expect(Date.parse(String(env?.payload.expiresAt)) - Date.parse(String(env?.timestamp))).toBe(24 * 3_600_000);
  });

  const fixtures = path.resolve(import.meta.dirname, '../fixtures/nachos-style');
  const copyFixture = (dir: string, ...names: string[]) => {
    for (const name of names) writeFileSync(path.join(dir, name), readFileSync(path.join(fixtures, name)));
  };

  it('Nachos-style files with only unknown keys: announced, warnings in the payload, the log and a metric', async ({ dir, listener, start }) => {
    copyFixture(dir, 'baseline.yaml');
    const running = await start();
    const [env] = await listener.waitFor(SUBJECTS.policyReload, 1);
    expect(env?.payload).toMatchObject({ revision: shellRevision(dir), counts: { files: 1, rules: 5, warnings: 5, skipped: 0 }, skipped: [] });
    expect((env?.payload.warnings as { file: string; line: number; message: string }[]).map((w) => `${w.file}:${w.line}: ${w.message}`)).toContain(
      'baseline.yaml:33: rules[1]: unknown key "audit"',
    );
    expect(running.lines.filter((l) => l.level === 40 && /^baseline\.yaml:\d+:\d+: warning: /.test(String(l.msg)))).toHaveLength(5);
    const metrics = await (await fetch(`http://127.0.0.1:${running.sentinel.httpAddress?.port}/metrics`)).text();
    expect(metrics).toMatch(/^nachos_sentinel_policy_warnings 5$/m);
  });

  it('Nachos-style files that Nachos refuses, reject-set (default): the whole set refused, saying what Nachos would do', async ({ dir, listener, start, reloads }) => {
    copyFixture(dir, 'baseline.yaml', 'sandbox.yml', 'workspace.yaml');
    await start();
    const [rejected] = await listener.waitFor(SUBJECTS.policyRejected, 1);
    const errors = rejected?.payload.errors as { file: string; message: string }[];
    expect(errors.map((e) => e.file)).toEqual(['sandbox.yml', 'workspace.yaml']);
    expect(errors[1]?.message).toMatch(/"less_than"; Nachos' own loader refuses this too and skips the whole of workspace\.yaml: its 3 rules \(2 allow, 1 deny\) would not be in force/);
    expect(rejected?.payload).toMatchObject({ inForce: null, hint: expect.stringContaining('skip-file') });
    await quietFor(200);
    expect(reloads()).toHaveLength(0);
  });

  it('Nachos-style files that Nachos refuses, skip-file: the valid file announced, the others named as skipped, the heartbeat degraded', async ({ root, dir, listen, listener, start, lastReload }) => {
    copyFixture(dir, 'baseline.yaml', 'sandbox.yml', 'workspace.yaml');
    const health = await listen([SUBJECTS.health]);
    const running = await start({ 'invalid-files': 'skip-file', interval: '200ms' });
    const [env] = await listener.waitFor(SUBJECTS.policyReload, 1);
    const onlyBaseline = path.join(root, 'only');
    mkdirSync(onlyBaseline);
    copyFileSync(path.join(dir, 'baseline.yaml'), path.join(onlyBaseline, 'baseline.yaml'));
    expect(env?.payload).toMatchObject({ revision: shellRevision(onlyBaseline), counts: { files: 1, rules: 5, skipped: 2 }, changed: { added: ['baseline.yaml'] } });
    expect((env?.payload.skipped as { path: string; problems: { line: number }[] }[]).map((s) => [s.path, s.problems.map((p) => p.line)])).toEqual([
      ['sandbox.yml', [9]],
      ['workspace.yaml', [30]],
    ]);
    expect(listener.on(SUBJECTS.policyRejected)).toHaveLength(0);
    const beat = await until(() =>
      health.on(SUBJECTS.health).find((e) => (e.payload.checks as Record<string, string> | undefined)?.policy_files === 'error'),
    );
    expect(beat.payload.status).toBe('degraded');
    expect((beat.payload.details as Record<string, { message: string }>).policy_files?.message).toBe(
      'invalid file(s) left out of the set in force (invalid_files = skip-file): sandbox.yml, workspace.yaml',
    );
    const metrics = await (await fetch(`http://127.0.0.1:${running.sentinel.httpAddress?.port}/metrics`)).text();
    expect(metrics).toMatch(/^nachos_sentinel_policy_skipped_files 2$/m);

    // Fixing a skipped file brings it in: a change, and the heartbeat healthy again.
    writeFileSync(path.join(dir, 'workspace.yaml'), readFileSync(path.join(fixtures, 'workspace.yaml'), 'utf8').replace('operator: "less_than"', 'operator: "not_equals"'));
    await listener.waitFor(SUBJECTS.policyReload, 2);
    expect(lastReload()).toMatchObject({ reason: 'change', counts: { files: 2, skipped: 1 }, changed: { added: ['workspace.yaml'] } });
  });

  it('answers nachos.system.policy.current with the announcement in force, as announced, correlated with the request', async ({ dir, listener, start, write, lastReload }) => {
    write('a.toml', policyText('a1'));
    await start();
    const [announcement] = await listener.waitFor(SUBJECTS.policyReload, 1);
    const request = { id: 'req-1', timestamp: new Date().toISOString(), source: 'test', type: 'system.policy.current', payload: {} };
    const reply = await listener.nc.request(SUBJECTS.policyCurrent, JSON.stringify(request), { timeout: 2000 });
    const env = reply.json<Record<string, unknown> & { correlationId: string; payload: Record<string, unknown> }>();
    // The announcement itself (encoded and signed once), with the request's id in front.
    const { correlationId, ...rest } = env;
    expect(correlationId).toBe('req-1');
    expect(rest).toEqual(announcement);
    expect(env.payload).toEqual(lastReload());

    // An empty request body is fine too: the very bytes announced.
    const bare = await listener.nc.request(SUBJECTS.policyCurrent, '', { timeout: 2000 });
    expect(bare.json<{ payload: { revision: string } }>().payload.revision).toBe(shellRevision(dir));
    expect(bare.json()).toEqual(announcement);
  });
});

describe('policy reload with a small max_payload', () => {
  it('announces a head when the whole would not fit, and serves the body in parts that hash to what the head says', async ({ startServer, root, sentinel, listen }) => {
    const server = await startServer({ config: 'max_payload: 1024\n' });
    const dir = path.join(root, 'big');
    mkdirSync(dir);
    const listener = await listen([SUBJECTS.policyReload], server.url);
    for (let i = 0; i < 7; i++) writeFileSync(path.join(dir, `p${i}.toml`), policyText(`big-${i}-a`, `big-${i}-b`));
    const running = await sentinel({ servers: server.url, policies: dir });
    const requester = (subject: string, data: Uint8Array) =>
      listener.nc.request(subject, data, { timeout: 2000 }).then((m) => {
        if (m.headers?.get('Nats-Service-Error')) throw new Error(m.headers.get('Nats-Service-Error'));
        return m.data;
      });
    const [env] = await listener.waitFor(SUBJECTS.policyReload, 1);
    const head = env?.payload as unknown as PolicyReloadPayload;
    expect(head).toMatchObject({ revision: shellRevision(dir), counts: { files: 7, rules: 14 }, transfer: { subject: `nachos.system.policy.transfer.${running.sentinel.instance}` } });
    expect(head.files).toBeUndefined();
    expect(head.transfer?.parts).toBeGreaterThan(1);
    const whole = await fetchReloadBody(head, requester);
    expect(whole.files.map((f) => f.content)).toEqual(readdirSync(dir).sort().map((f) => readFileSync(path.join(dir, f), 'utf8')));
    expect(whole.policies).toHaveLength(7);
    expect(running.sentinel.announcer.publishFailure).toBeUndefined();

    // policy.current answers the same way.
    const reply = await listener.nc.request(SUBJECTS.policyCurrent, '', { timeout: 2000 });
    const current = reply.json<{ payload: PolicyReloadPayload }>().payload;
    expect(current).toEqual(head);
    expect((await fetchReloadBody(current, requester)).revision).toBe(head.revision);

    // A part that does not exist, or a body no longer kept, is an ADR-32 error, not a hang.
    await expect(requester(head.transfer?.subject ?? '', new TextEncoder().encode(JSON.stringify({ sha256: '0'.repeat(64), part: 0 })))).rejects.toThrow(/no body 000000000000 here/);
    await expect(requester(head.transfer?.subject ?? '', new TextEncoder().encode('{"part": 0}'))).rejects.toThrow(/a transfer request is/);
  });
});

describe('signed reloads on the bus', () => {
  it('signs every reload and current reply with the configured seed; `verify` checks them', async ({ root, dir, sentinel, listen }) => {
    const { createAccount } = await import('@nats-io/nkeys');
    const { Daemon } = await import('../helpers/daemon.js');
    const { kp: key, seedFile } = signingKey(root);
    const listener = await listen([SUBJECTS.policyReload]);
    const running = await sentinel({ policies: dir, 'signing-seed': seedFile });
    const [env] = await listener.waitFor(SUBJECTS.policyReload, 1);
    expect(env?.payload.signature).toMatchObject({ alg: 'ed25519-nkey', key: key.getPublicKey() });
    expect(running.lines.find((l) => l.msg === 'reloads are signed')).toMatchObject({ publicKey: key.getPublicKey() });
    expect(JSON.stringify(running.lines)).not.toContain(new TextDecoder().decode(key.getSeed()));

    const message = path.join(root, 'reload.json');
    writeFileSync(message, JSON.stringify(env));
    const ok = await Daemon.run(['verify', '--public-key', key.getPublicKey(), message]);
    expect(ok).toMatchObject({ code: 0, stdout: `valid: revision ${String(env?.payload.revision)} signed by ${key.getPublicKey()}, until ${String(env?.payload.expiresAt)}\n` });
    expect(await Daemon.run(['verify', '--public-key', key.getPublicKey(), '--deployment', 'prod', message])).toMatchObject({
      code: 1,
      stdout: 'invalid: wrong deployment (the message is for "", this configuration for "prod")\n',
    });
    const other = createAccount().getPublicKey();
    expect(await Daemon.run(['verify', '--public-key', other, message])).toMatchObject({ code: 1, stdout: 'invalid: wrong key\n' });
    writeFileSync(message, JSON.stringify({ ...env, payload: { ...env?.payload, signature: undefined } }));
    expect(await Daemon.run(['verify', message], { SENTINEL_PUBLIC_KEY: key.getPublicKey() })).toMatchObject({ code: 1, stdout: 'invalid: unsigned\n' });

    // The README's recipe, with OpenSSL: a tool this project did not write.
    const recipe = [...doc('docs/signing.md').matchAll(/```sh\n([\s\S]*?)```/g)]
      .map((m) => m[1] ?? '')
      .find((b) => b.includes('openssl pkeyutl'));
    expect(recipe).toBeDefined();
    const openssl = (file: string) => {
      copyFileSync(file, path.join(root, 'reload.json'));
      return spawnSync('sh', ['-e', '-c', recipe ?? ''], { cwd: root, env: { PATH: process.env.PATH, KEY: key.getPublicKey() }, encoding: 'utf8' });
    };
    const signedFile = path.join(root, 'signed.json');
    writeFileSync(signedFile, JSON.stringify(env));
    const verified = openssl(signedFile);
    expect(verified.stdout.trim(), verified.stderr).toBe('Signature Verified Successfully');

    // A reload whose deny became an allow on the way, published on the bus like the real one, is refused.
    const forged = structuredClone(env) as unknown as Envelope<PolicyReloadPayload>;
    const rule = forged.payload.policies?.[0]?.document.rules[0];
    if (rule) rule.effect = rule.effect === 'allow' ? 'deny' : 'allow';
    writeFileSync(message, JSON.stringify(forged));
    expect(await Daemon.run(['verify', '--public-key', key.getPublicKey(), message])).toMatchObject({ code: 1, stdout: 'invalid: bad signature\n' });
    const refused = openssl(message);
    expect(refused.status).not.toBe(0);
    expect(refused.stdout).toContain('Signature Verification Failure');
    expect(await Daemon.run(['verify', '--public-key', 'NOTAKEY', message])).toMatchObject({ code: 2, stderr: expect.stringContaining('--public-key: the key (7 characters) is not a public NKey') });

    const reply = await listener.nc.request(SUBJECTS.policyCurrent, JSON.stringify({ id: 'r1', timestamp: new Date().toISOString(), source: 't', type: 't', payload: {} }), { timeout: 2000 });
    const { verifyReload } = await import('../../src/index.js');
    expect(verifyReload(reply.json(), key.getPublicKey())).toEqual({ ok: true, key: key.getPublicKey() });
  });

  it('refuses to start with a signing seed that is not one (exit 2, before connecting)', async ({ root }) => {
    const { Daemon } = await import('../helpers/daemon.js');
    writeFileSync(path.join(root, 'bad.nk'), 'SUAsecretbutbroken', { mode: 0o600 });
    const r = await Daemon.run(['--signing-seed', path.join(root, 'bad.nk'), '--servers', 'nats://127.0.0.1:1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('not an NKey seed');
    expect(r.stdout + r.stderr).not.toContain('SUAsecretbutbroken');
  });
});

import {
  closeSync,
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
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/errors.js';
import { SUBJECTS } from '../../src/topics.js';
import { BusListener } from '../helpers/bus-listener.js';
import { NatsServer } from '../helpers/nats-server.js';
import { atomicWrite, policyDir, policyText } from '../helpers/policy-files.js';
import { shellRevision } from '../helpers/revision.js';
import { startSentinel } from '../helpers/sentinel.js';
import { tempDir } from '../helpers/temp-dir.js';
import { quietFor, until } from '../helpers/until.js';

type Running = Awaited<ReturnType<typeof startSentinel>>;

describe('policy reload, end to end', () => {
  let server: NatsServer;
  let listener: BusListener;
  let root: string;
  let dir: string;
  let cleanup: () => void;
  let running: Running | undefined;

  beforeAll(async () => {
    server = await NatsServer.start();
  });
  afterAll(async () => {
    await server.stop();
  });
  beforeEach(async () => {
    ({ dir: root, cleanup } = tempDir());
    dir = path.join(root, 'policies');
    mkdirSync(dir);
    listener = await BusListener.start(server.url, [SUBJECTS.policyReload, SUBJECTS.policyRejected]);
  });
  afterEach(async () => {
    await running?.close();
    running = undefined;
    await listener.close();
    cleanup();
  });

  const start = async (flags: Record<string, string | boolean | string[]> = {}) => {
    running = await startSentinel({ servers: server.url, policies: dir, ...flags }, root);
    await running.connected();
    return running;
  };
  const reloads = () => listener.on(SUBJECTS.policyReload).map((e) => e.payload);
  const rejections = () => listener.on(SUBJECTS.policyRejected).map((e) => e.payload);
  const write = (name: string, text: string) => writeFileSync(path.join(dir, name), text);
  const lastReload = () => reloads().at(-1);

  it('announces the set at startup, with the whole payload in a Nachos envelope', async () => {
    write('a.toml', policyText('a1', 'a2'));
    write('b.toml', policyText('b1'));
    await start();
    const [env] = await listener.waitFor(SUBJECTS.policyReload);
    expect(env).toMatchObject({ type: 'system.policy.reload', source: 'sentinel' });
    expect(Date.parse(env?.timestamp ?? '')).not.toBeNaN();
    expect(env?.payload).toMatchObject({
      schemaVersion: 1,
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

  it('announces each change once, and nothing for a touch that changes no byte', async () => {
    write('a.toml', policyText('a1'));
    await start();
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

    const appliesBefore = running?.applies.length ?? 0;
    const now = new Date();
    utimesSync(path.join(dir, 'a.toml'), now, now);
    write('a.toml', policyText('a1', 'a2')); // same bytes again
    await until(() => running?.applies.slice(appliesBefore).some((a) => a.outcome === 'unchanged'), 5000, 'an unchanged apply');
    await quietFor(200);
    expect(reloads()).toHaveLength(2);
  });

  it('follows atomic saves, deletes and re-creations', async () => {
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

  it('rejects an invalid set, keeps the revision in force, and recovers when it is fixed', async () => {
    write('a.toml', policyText('a1'));
    await start();
    await listener.waitFor(SUBJECTS.policyReload, 1);
    const good = lastReload()?.revision;

    write('b.toml', 'version = "1.0"\n[[rules]]\nid = "b1"\npriority = 1\nmatch = { resource = "tool" }\neffect = "maybe"\n');
    const [rejected] = await listener.waitFor(SUBJECTS.policyRejected, 1);
    expect(rejected?.type).toBe('system.policy.rejected');
    expect(rejected?.payload).toMatchObject({
      schemaVersion: 1,
      inForce: good,
      revision: shellRevision(dir),
      errors: [{ code: ERROR_CODES.POLICY_SCHEMA, file: 'b.toml', line: 6, ruleId: 'b1', path: '/rules/0/effect' }],
    });
    expect(running?.sentinel.reloader.inForce?.revision).toBe(good);
    expect(running?.lines.some((l) => l.level === 50 && String(l.msg).startsWith('policy set rejected'))).toBe(true);

    // A syntax error in the same file is a new rejection, with line and column.
    write('b.toml', 'version = "1.0"\n[[rules]\n');
    await listener.waitFor(SUBJECTS.policyRejected, 2);
    expect(rejections()[1]).toMatchObject({ errors: [{ code: ERROR_CODES.POLICY_SYNTAX, file: 'b.toml', line: 2 }] });
    expect(reloads()).toHaveLength(1);

    write('b.toml', policyText('b1'));
    await listener.waitFor(SUBJECTS.policyReload, 2);
    expect(lastReload()).toMatchObject({ reason: 'change', previous: good, revision: shellRevision(dir), sequence: 2 });
  });

  it('never announces a file written in chunks half-written', async () => {
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

  it('coalesces 200 rapid writes, and the last announcement is the final contents', async () => {
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

  it('publishes a Kubernetes ConfigMap swap at once, without waiting for quiet', async () => {
    // The layout kubelet makes: files are links through ..data to a timestamped directory.
    mkdirSync(path.join(dir, '..2026_11_27_01'));
    writeFileSync(path.join(dir, '..2026_11_27_01', 'a.toml'), policyText('k1'));
    symlinkSync('..2026_11_27_01', path.join(dir, '..data'));
    symlinkSync('..data/a.toml', path.join(dir, 'a.toml'));
    await start({ 'quiet-window': '10s', 'max-wait': '20s' });
    await listener.waitFor(SUBJECTS.policyReload, 1);

    mkdirSync(path.join(dir, '..2026_11_27_02'));
    writeFileSync(path.join(dir, '..2026_11_27_02', 'a.toml'), policyText('k1', 'k2'));
    symlinkSync('..2026_11_27_02', path.join(dir, '..data_tmp'));
    renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    rmSync(path.join(dir, '..2026_11_27_01'), { recursive: true });

    // A 10 s quiet window: arriving within 5 s means it did not wait for quiet.
    await listener.waitFor(SUBJECTS.policyReload, 2, 5000);
    expect(lastReload()).toMatchObject({ revision: shellRevision(dir), changed: { modified: ['a.toml'] } });
    expect(running?.applies.some((a) => a.context.trigger === 'swap' && a.outcome === 'accepted')).toBe(true);
  });

  it('waits for a policy directory that does not exist yet', async () => {
    rmSync(dir, { recursive: true });
    await start();
    await quietFor(200);
    expect(listener.messages).toEqual([]);
    expect(running?.lines.some((l) => l.msg === 'waiting for the policy directory to appear')).toBe(true);

    mkdirSync(dir);
    write('a.toml', policyText('late'));
    await listener.waitFor(SUBJECTS.policyReload, 1);
    expect(lastReload()).toMatchObject({ reason: 'startup', revision: shellRevision(dir) });
    expect(rejections()).toEqual([]);
  });

  it('survives the directory being removed and recreated', async () => {
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

  it('rejects an empty directory unless allowed', async () => {
    await start();
    const [rejected] = await listener.waitFor(SUBJECTS.policyRejected, 1);
    expect(rejected?.payload).toMatchObject({ inForce: null, errors: [{ code: ERROR_CODES.POLICY_EMPTY }] });
    const reply = await listener.nc.request(SUBJECTS.policyCurrent, '', { timeout: 2000 });
    expect(reply.json<{ payload: unknown }>().payload).toMatchObject({ schemaVersion: 1, error: { code: ERROR_CODES.NO_SNAPSHOT } });
    await running?.close();

    listener.messages.length = 0;
    running = undefined;
    await start({ 'allow-empty': true });
    await listener.waitFor(SUBJECTS.policyReload, 1);
    expect(lastReload()).toMatchObject({ counts: { files: 0, rules: 0 }, reason: 'startup' });
  });

  it('watches other TOML files named in the config, and checks their syntax', async () => {
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

  it('catches by periodic rescan what the watcher cannot see', async () => {
    // A link to a file in a subdirectory: its edits make no event in the (watched) directory itself.
    mkdirSync(path.join(dir, 'sub'));
    const outside = path.join(dir, 'sub', 'o.toml');
    writeFileSync(outside, policyText('o1'));
    symlinkSync('sub/o.toml', path.join(dir, 'o.toml'));
    await start({ 'rescan-interval': '200ms' });
    await listener.waitFor(SUBJECTS.policyReload, 1);

    writeFileSync(outside, policyText('o1', 'o2'));
    await listener.waitFor(SUBJECTS.policyReload, 2);
    expect(lastReload()?.revision).toBe(shellRevision(dir));
    expect(running?.applies.some((a) => a.context.trigger === 'rescan' && a.outcome === 'accepted')).toBe(true);
  });

  it('works on an unmodified Nachos policies/ directory, in YAML', async () => {
    const fixtures = path.resolve(import.meta.dirname, '../fixtures/nachos-policies');
    for (const name of readdirSync(fixtures)) writeFileSync(path.join(dir, name), readFileSync(path.join(fixtures, name)));
    await start();
    const [env] = await listener.waitFor(SUBJECTS.policyReload, 1);
    expect(env?.payload).toMatchObject({ revision: shellRevision(dir), counts: { files: 3, rules: 6 } });
    writeFileSync(path.join(dir, 'dms.yml'), 'version: "1.0"\nrules:\n  - id: "deny-dms"\n    priority: 1\n    match:\n      resource: "dm"\n    effect: "deny"\n');
    await listener.waitFor(SUBJECTS.policyReload, 2);
    expect(lastReload()).toMatchObject({ changed: { modified: ['dms.yml'] }, revision: shellRevision(dir) });
    writeFileSync(path.join(dir, 'dms.yml'), 'version: "1.0"\nrules:\n  - id: "deny-dms"\n    priority: high\n');
    const [rejected] = await listener.waitFor(SUBJECTS.policyRejected, 1);
    expect(rejected?.payload).toMatchObject({ errors: expect.arrayContaining([expect.objectContaining({ file: 'dms.yml', line: 4 })]) });
  });

  it('answers nachos.system.policy.current with the snapshot in force', async () => {
    write('a.toml', policyText('a1'));
    await start();
    await listener.waitFor(SUBJECTS.policyReload, 1);
    const request = { id: 'req-1', timestamp: new Date().toISOString(), source: 'test', type: 'system.policy.current', payload: {} };
    const reply = await listener.nc.request(SUBJECTS.policyCurrent, JSON.stringify(request), { timeout: 2000 });
    const env = reply.json<{ type: string; correlationId: string; payload: Record<string, unknown> }>();
    expect(env).toMatchObject({ type: 'system.policy.current', correlationId: 'req-1' });
    const { reason, ...rest } = env.payload;
    const { reason: _r, ...announced } = lastReload() as Record<string, unknown>;
    expect(reason).toBe('request');
    expect(rest).toEqual(announced);

    // An empty request body is fine too.
    const bare = await listener.nc.request(SUBJECTS.policyCurrent, '', { timeout: 2000 });
    expect(bare.json<{ payload: { revision: string } }>().payload.revision).toBe(shellRevision(dir));
  });
});

describe('policy reload with a small max_payload', () => {
  it('leaves the policy set out of a message that would not fit, and says so', async () => {
    const server = await NatsServer.start({ config: 'max_payload: 4096\n' });
    const { dir: root, cleanup } = tempDir();
    const dir = path.join(root, 'policies');
    mkdirSync(dir);
    const listener = await BusListener.start(server.url, [SUBJECTS.policyReload]);
    const ids = Array.from({ length: 40 }, (_, i) => `big-${i}`);
    writeFileSync(path.join(dir, 'a.toml'), policyText(...ids));
    const running = await startSentinel({ servers: server.url, policies: dir }, root);
    try {
      const [env] = await listener.waitFor(SUBJECTS.policyReload, 1);
      expect(env?.payload.policies).toBeUndefined();
      expect(env?.payload).toMatchObject({
        revision: shellRevision(dir),
        counts: { rules: 40 },
        policiesOmitted: { reason: 'max_payload', maxPayload: 4096 },
      });
      expect((env?.payload.policiesOmitted as { bytes: number }).bytes).toBeGreaterThan(4096);
    } finally {
      await running.close();
      await listener.close();
      await server.stop();
      cleanup();
    }
  });
});

describe('signed reloads on the bus', () => {
  it('signs every reload and current reply with the configured seed; `verify` checks them', async () => {
    const { createAccount } = await import('@nats-io/nkeys');
    const { Daemon } = await import('../helpers/daemon.js');
    const server = await NatsServer.start();
    const { root, dir, cleanup } = policyDir();
    const key = createAccount();
    const seedFile = path.join(root, 'signing.nk');
    writeFileSync(seedFile, new TextDecoder().decode(key.getSeed()));
    const listener = await BusListener.start(server.url, [SUBJECTS.policyReload]);
    const running = await startSentinel({ servers: server.url, policies: dir, 'signing-seed': seedFile }, root);
    try {
      const [env] = await listener.waitFor(SUBJECTS.policyReload, 1);
      expect(env?.payload.signature).toMatchObject({ alg: 'ed25519-nkey', key: key.getPublicKey() });
      expect(running.lines.find((l) => l.msg === 'reloads are signed')).toMatchObject({ publicKey: key.getPublicKey() });
      expect(JSON.stringify(running.lines)).not.toContain(new TextDecoder().decode(key.getSeed()));

      const message = path.join(root, 'reload.json');
      writeFileSync(message, JSON.stringify(env));
      const ok = await Daemon.run(['verify', '--public-key', key.getPublicKey(), message]);
      expect(ok).toMatchObject({ code: 0, stdout: `valid: revision ${String(env?.payload.revision)} signed by ${key.getPublicKey()}\n` });
      const other = createAccount().getPublicKey();
      expect(await Daemon.run(['verify', '--public-key', other, message])).toMatchObject({ code: 1, stdout: 'invalid: wrong key\n' });
      writeFileSync(message, JSON.stringify({ ...env, payload: { ...env?.payload, signature: undefined } }));
      expect(await Daemon.run(['verify', message], { SENTINEL_PUBLIC_KEY: key.getPublicKey() })).toMatchObject({ code: 1, stdout: 'invalid: unsigned\n' });

      const reply = await listener.nc.request(SUBJECTS.policyCurrent, '', { timeout: 2000 });
      const { verifyReload } = await import('../../src/index.js');
      expect(verifyReload(reply.json<{ payload: unknown }>().payload, key.getPublicKey())).toEqual({ ok: true });
    } finally {
      await running.close();
      await listener.close();
      await server.stop();
      cleanup();
    }
  });

  it('refuses to start with a signing seed that is not one (exit 2, before connecting)', async () => {
    const { Daemon } = await import('../helpers/daemon.js');
    const { dir: root, cleanup } = tempDir();
    writeFileSync(path.join(root, 'bad.nk'), 'SUAsecretbutbroken');
    const r = await Daemon.run(['--signing-seed', path.join(root, 'bad.nk'), '--servers', 'nats://127.0.0.1:1']);
    cleanup();
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('not an NKey seed');
    expect(r.stdout + r.stderr).not.toContain('SUAsecretbutbroken');
  });
});

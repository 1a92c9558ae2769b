import { execFileSync } from 'node:child_process';
import { acceptedEntry } from '../helpers/history-entries.js';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { describe, expect } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { historySubjects, JetStreamHistoryStore } from '../../src/history/jetstream-store.js';
import { buildSnapshot, type Snapshot } from '../../src/policy/snapshot.js';
import { SUBJECTS } from '../../src/protocol/topics.js';
import { checkRolloutEvent } from '../../src/rollout/rollout.js';
import { Daemon } from '../helpers/daemon.js';
import { test, type Flags } from '../helpers/fixtures.js';
import { NatsCluster } from '../helpers/nats-server.js';
import { policyYaml } from '../helpers/policy-files.js';
import { makeReload } from '../helpers/reloads.js';
import { signingKey } from '../helpers/signing.js';
import { until } from '../helpers/until.js';

const H = 200;
/** The rule a bad set carries: the stand-in gateway beside a sidecar goes unhealthy when it loads it. */
const BAD_RULE = 'deny-llm-everyone';

/**
 * A stand-in for Nachos' gateway reading its policy directory as Nachos' PolicyLoader does (every
 * `*.yaml` and `*.yml` in it, parsed; a file that does not parse is skipped): its HealthCheck on /health
 * is 503 `unhealthy` with its `llm` check failing while a rule with BAD_RULE's id is loaded.
 */
class ReadingGateway {
  private constructor(
    readonly server: Server,
    readonly dir: string,
  ) {}

  static async start(dir: string): Promise<ReadingGateway> {
    const server = createServer((_req, res) => {
      const bad = ReadingGateway.ruleIds(dir).includes(BAD_RULE);
      res.writeHead(bad ? 503 : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: bad ? 'unhealthy' : 'healthy', component: 'gateway', version: '1.4.2', uptime: 60, checks: { database: 'ok', llm: bad ? 'error' : 'ok' } }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new ReadingGateway(server, dir);
  }

  /** The rule ids the directory holds, as the loader would load them. */
  static ruleIds(dir: string): string[] {
    if (!existsSync(dir)) return [];
    const ids: string[] = [];
    for (const name of readdirSync(dir).filter((n) => /\.ya?ml$/.test(n))) {
      try {
        const doc = parseYaml(readFileSync(path.join(dir, name), 'utf8')) as { rules?: { id: string }[] };
        for (const rule of doc.rules ?? []) ids.push(rule.id);
      } catch {
        // Skipped, as Nachos skips a file it cannot read.
      }
    }
    return ids;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/health`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** The files of a delivery directory as a reader finds them: name -> text. */
function onDisk(dir: string): Record<string, string> {
  if (!existsSync(dir)) return {};
  return Object.fromEntries(readdirSync(dir).filter((n) => !n.startsWith('.')).map((n) => [n, readFileSync(path.join(dir, n), 'utf8')]));
}

/** The policy directory holding exactly these YAML files (name -> rule ids). */
function writeSet(dir: string, files: Record<string, string[]>): void {
  for (const name of readdirSync(dir)) if (!(name in files)) rmSync(path.join(dir, name));
  for (const [name, ids] of Object.entries(files)) writeFileSync(path.join(dir, name), policyYaml(...ids));
}

const it = test
  .extend('yamlDir', async ({ dir }) => {
    // Nachos reads YAML only: the sets here are what its loader would load.
    writeSet(dir, { 'a.yaml': ['a1'] });
    return dir;
  })
  .extend('central', async ({ sentinel, yamlDir, root }) => async (flags: Flags = {}) => {
    const running = await sentinel({ interval: `${H}ms`, policies: yamlDir, 'state-dir': path.join(root, 'state'), ...flags });
    await running.connected();
    return running;
  })
  .extend('cli', async ({ server, root }) => async (args: string[], env: Record<string, string> = {}) => {
    const result = await Daemon.run([...args, '--servers', server.url], { SENTINEL_STATE_DIR: path.join(root, 'state'), ...env }, root);
    return result;
  });

describe('the policy history', () => {
  it('records every set, a rejected one too, keeps it across restarts, and shows, lists and diffs it from the command line', async ({ central, yamlDir, root, cli }) => {
    const first = await central();
    writeSet(yamlDir, { 'a.yaml': ['a1'], 'b.yaml': ['b1'] });
    await until(() => first.sentinel.rollout.inForce?.files.length === 2, 5000, 'the second set');
    writeFileSync(path.join(yamlDir, 'c.yaml'), 'rules: [');
    await until(() => first.sentinel.reloader.lastRejection, 5000, 'the rejection');
    await first.sentinel.rollout.flushed();
    await first.close();
    rmSync(path.join(yamlDir, 'c.yaml'));
    // Started again on the same directory: the set in force is the one recorded last, nothing new to record.
    const second = await central();
    await until(() => second.sentinel.rollout.inForce, 5000, 'the set in force');
    await second.sentinel.rollout.flushed();

    const listed = await cli(['history', '--json']);
    expect(listed.code).toBe(0);
    const { entries } = JSON.parse(listed.stdout) as { entries: { n: number; kind: string; revision: string; problems?: string[]; changed: { added: string[] } }[] };
    expect(entries.map((e) => [e.n, e.kind])).toEqual([
      [3, 'rejected'],
      [2, 'accepted'],
      [1, 'accepted'],
    ]);
    expect(entries[0]?.problems?.[0]).toMatch(/^c\.yaml/);
    expect(entries[1]?.changed.added).toEqual(['b.yaml']);
    const table = await cli(['history']);
    expect(table.stdout).toMatch(/^#\s+when \(UTC\)\s+what\s+revision/);
    expect(table.stdout).toMatch(/#3 .* rejected .*c\.yaml/);

    const shown = await cli(['history', 'show', '2']);
    expect(shown.stdout).toContain(`==> b.yaml (policy, ${Buffer.byteLength(policyYaml('b1'))} bytes`);
    expect(shown.stdout).toContain(policyYaml('b1'));
    expect((await cli(['history', 'show', '#9'])).stderr).toMatch(/nachos-sentinel history: no history entry #9 in .*state \(it holds entries 1 to 3\)/);

    // The diff is a patch: applied by GNU patch to the files of #1, it makes the files of #2.
    const diff = await cli(['history', 'diff', '1', entries[1]?.revision.slice(0, 10) as string]);
    expect(diff.code).toBe(0);
    expect(diff.stdout).toContain('--- /dev/null\n+++ b/b.yaml\n');
    const work = path.join(root, 'patched');
    mkdirSync(work);
    writeFileSync(path.join(work, 'a.yaml'), policyYaml('a1'));
    execFileSync('patch', ['-p1', '--batch', '--silent'], { cwd: work, input: diff.stdout });
    expect(onDisk(work)).toEqual({ 'a.yaml': policyYaml('a1'), 'b.yaml': policyYaml('b1') });
  });
});

describe('rollback', () => {
  it('reaches a sidecar\'s directory as a new signed event, holds over a central restart, and the next change of the directory wins', async ({ central, sidecarOf, yamlDir, root, cli, listen }) => {
    const key = signingKey(root);
    const signed = { 'signing-seed': key.seedFile };
    const listener = await listen([SUBJECTS.policyReload, SUBJECTS.policyRollout]);
    const first = await central(signed);
    const delivered = path.join(root, 'delivered');
    const side = await sidecarOf('gateway', { 'deliver-to': delivered, 'public-key': key.publicKey, interval: `${H}ms` });
    await until(() => onDisk(delivered)['a.yaml'], 5000, 'the first delivery');
    writeSet(yamlDir, { 'a.yaml': ['a1', BAD_RULE] });
    await until(() => ReadingGateway.ruleIds(delivered).includes(BAD_RULE), 5000, 'the bad set delivered');
    const bad = first.sentinel.rollout.inForce?.revision as string;
    await first.sentinel.rollout.flushed();

    const done = await cli(['rollback', '1', '--reason', 'the LLM is denied to everyone']);
    expect(done).toMatchObject({ code: 0, stdout: expect.stringMatching(/^rolled back to [0-9a-f]{12} \(entry #1\); the source directory holds [0-9a-f]{12}: the LLM is denied to everyone \(by sentinel\//) });
    await until(() => !ReadingGateway.ruleIds(delivered).includes(BAD_RULE), 5000, 'the rollback delivered');
    // A new event: reason rollback, what it replaces, a fresher statement and the next sequence, signed.
    const reloads = listener.on(SUBJECTS.policyReload);
    const rolled = reloads.at(-1)?.payload as { reason: string; replaces: string; sequence: number; issuedAt: string; signature: { key: string } };
    const before = reloads.findLast((e) => e.payload.revision === bad)?.payload as { sequence: number; issuedAt: string };
    expect(rolled).toMatchObject({ reason: 'rollback', replaces: bad, signature: { key: key.publicKey } });
    expect(rolled.sequence).toBeGreaterThan(before.sequence);
    expect(Date.parse(rolled.issuedAt)).toBeGreaterThan(Date.parse(before.issuedAt));
    const event = (await listener.waitFor(SUBJECTS.policyRollout))[0];
    expect(event?.payload).toMatchObject({ event: 'rollback', previous: bad });
    expect(checkRolloutEvent(event, [key.publicKey])).toMatchObject({ ok: true });
    // Said everywhere: the status, the log.
    expect(first.sentinel.rollout.view().summary).toMatch(/^rolled back to [0-9a-f]{12}; the source directory holds [0-9a-f]{12}/);
    expect(first.lines.some((l) => /^rolled back to/.test(String(l.msg)))).toBe(true);

    // The central sentinel restarts: the rollback holds.
    await first.close();
    const second = await central(signed);
    await until(() => second.sentinel.rollout.inForce, 5000, 'the set in force after the restart');
    expect(second.sentinel.rollout.pin).toMatchObject({ replaces: bad });
    expect(second.sentinel.rollout.inForce?.revision).not.toBe(bad);
    await new Promise((resolve) => setTimeout(resolve, 4 * H));
    expect(ReadingGateway.ruleIds(delivered)).not.toContain(BAD_RULE);
    expect(side.sidecar.receiver?.delivered?.revision).toBe(second.sentinel.rollout.inForce?.revision);

    // The directory changes: that set wins, and says so.
    writeSet(yamlDir, { 'a.yaml': ['a1', 'a2'] });
    await until(() => ReadingGateway.ruleIds(delivered).includes('a2'), 5000, 'the next set delivered');
    expect(second.sentinel.rollout.pin).toBeUndefined();
    expect(second.lines.some((l) => /the policy directory changed: the rollback to [0-9a-f]{12} is over/.test(String(l.msg)))).toBe(true);
  });

  it('is refused when it cannot be done, saying why', async ({ central, cli }) => {
    await central();
    expect(await cli(['rollback', '1'])).toMatchObject({ code: 1, stderr: expect.stringContaining('refused (409): revision') });
    expect(await cli(['rollback', 'abcdef0123'])).toMatchObject({ code: 1, stderr: expect.stringContaining('refused (404): no revision starting abcdef0123') });
    expect(await cli(['rollback', '--release'])).toMatchObject({ code: 1, stderr: expect.stringContaining('no rollback is in force') });
    expect(await cli(['rollback'])).toMatchObject({ code: 2, stderr: expect.stringContaining('rollback takes a REVISION') });
  });

  it('is an operator\'s alone under deploy/nats-server.conf: a component cannot ask for it, nor write the history stream', async ({ startServer, sentinel, yamlDir, root, defer }) => {
    const config = readFileSync(path.resolve(import.meta.dirname, '../../deploy/nats-server.conf'), 'utf8').replace('# jetstream {\n#   store_dir: /data/jetstream\n# }', `jetstream {\n  store_dir: ${path.join(root, 'js')}\n}`);
    const env = { SENTINEL_PASSWORD: 's3ntinel', GATEWAY_PASSWORD: 'g4teway', GATEWAY_SIDECAR_PASSWORD: 'sidec4r', OPERATOR_PASSWORD: '0perator' };
    const server = await startServer({ config, env });
    const running = await sentinel({ servers: server.url, user: 'sentinel', password: 's3ntinel', interval: `${H}ms`, policies: yamlDir, 'history-store': 'jetstream' });
    await running.connected();
    writeSet(yamlDir, { 'a.yaml': ['a1', 'a2'] });
    await until(async () => (await running.sentinel.history?.index())?.length === 2, 5000, 'two entries in the stream');
    // The gateway's user: refused by the server, on the rollback subject and on the stream's.
    const gateway = await connect({ servers: server.url, user: 'gateway', pass: 'g4teway' });
    defer(() => gateway.close());
    const errors: string[] = [];
    void (async () => {
      for await (const s of gateway.status()) if (s.type === 'error') errors.push(String((s.error as Error).message));
    })();
    gateway.publish(SUBJECTS.policyRollback, JSON.stringify({ revision: '1' }));
    gateway.publish(`${historySubjects('').entry(3)}`, '{}');
    await until(() => errors.length >= 2, 5000, 'two permission violations');
    expect(errors.join('\n')).toMatch(/Permissions Violation for Publish to "nachos.system.policy.rollback"/i);
    expect(errors.join('\n')).toMatch(/Permissions Violation for Publish to "nachos.system.history._.entry.3"/i);
    const asGateway = await Daemon.run(['rollback', '1', '--servers', server.url, '--user', 'gateway', '--password', 'g4teway'], {}, root);
    expect(asGateway.code).toBe(1);
    expect(running.sentinel.rollout.pin).toBeUndefined();
    // The operator's user: done.
    const asOperator = await Daemon.run(['rollback', '1', '--servers', server.url, '--user', 'operator', '--password', '0perator'], {}, root);
    expect(asOperator).toMatchObject({ code: 0, stdout: expect.stringContaining('rolled back to') });
    // And the operator reads the history from the stream.
    const listed = await Daemon.run(['history', '--history-store', 'jetstream', '--servers', server.url, '--user', 'operator', '--password', '0perator'], {}, root);
    expect(listed).toMatchObject({ code: 0, stdout: expect.stringMatching(/#3 .* rollback /) });
    expect(running.lines.filter((l) => String(l.msg).startsWith('the bus refused'))).toEqual([]);
  });
});

describe('rollout status', () => {
  it('exits 0 when every instance runs the set in force, healthy; 1 when a reload hook failed; 3 when the timeout passes first', async ({ central, sidecarOf, yamlDir, root, cli }) => {
    const running = await central();
    const good = path.join(root, 'good');
    await sidecarOf('gateway', { 'deliver-to': good, interval: `${H}ms` });
    await until(() => running.sentinel.rollout.view().instances.some((i) => i.component === 'gateway'), 10_000, 'the gateway in the ledger');
    writeSet(yamlDir, { 'a.yaml': ['a1', 'a2'] });
    const complete = await cli(['rollout', 'status', '--wait', '--timeout', '15s']);
    expect(complete).toMatchObject({ code: 0, stdout: expect.stringMatching(/complete: \d+ of \d+ instance\(s\) done/) });
    expect(complete.stdout).toMatch(/gateway\/\S+\s+done\s+[0-9a-f]{12}/);

    // A sidecar whose reload hook fails: failed, saying which and why.
    await sidecarOf('worker', { 'deliver-to': path.join(root, 'worker'), 'reload-command': 'exit 3', interval: `${H}ms` });
    // Once the central has heard it (an instance not heard yet is in no ledger: asked before, the
    // rollout is complete without it, as seen once on a busy machine), --wait waits for its hook.
    await until(() => running.sentinel.rollout.view().instances.some((i) => i.component === 'worker'), 10_000, 'the worker in the ledger');
    const failed = await cli(['rollout', 'status', '--wait', '--timeout', '15s']);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/worker\/\S+\s+failed .*the reload hook failed: the reload command exited 3/);
    const json = JSON.parse((await cli(['rollout', 'status', '--json'])).stdout) as { verdict: string };
    expect(json.verdict).toBe('failed');
    expect(running.sentinel.rollout.view().verdict).toBe('failed');
  });

  it('exits 3 while a canary waits for its canaries, at once without --wait, and after --timeout with it', async ({ central, yamlDir, cli, listen }) => {
    const running = await central({ canary: 'gateway-canary' });
    writeSet(yamlDir, { 'a.yaml': ['a1', 'a2'] });
    await until(() => running.sentinel.rollout.view().canary, 5000, 'the canary');
    // Who asks for the set in force is answered with the set for them: a canary the canary's, the others theirs.
    const asker = await listen([]);
    const current = async (payload: object) =>
      (await asker.nc.request(SUBJECTS.policyCurrent, JSON.stringify(payload), { timeout: 2000 })).json<{ payload: { revision: string; audience?: string[]; excludes?: string[] } }>().payload;
    const view = running.sentinel.rollout.view();
    expect(await current({ component: 'gateway-canary', instance: 'c1' })).toMatchObject({ revision: view.canary?.revision, audience: ['gateway-canary'] });
    expect(await current({ component: 'gateway', instance: 'g1' })).toMatchObject({ revision: view.revision, excludes: ['gateway-canary'] });
    expect(await current({})).toMatchObject({ revision: view.revision });
    const now = await cli(['rollout', 'status']);
    expect(now).toMatchObject({ code: 3, stdout: expect.stringContaining('canary: ') });
    const started = performance.now();
    const later = await cli(['rollout', 'status', '--wait', '--timeout', '1s']);
    expect(later).toMatchObject({ code: 3, stderr: expect.stringContaining('not complete after 1s') });
    expect(performance.now() - started).toBeGreaterThanOrEqual(900);
    // And the same ledger in /status.json and the metrics.
    const port = running.sentinel.httpAddress?.port;
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/^nachos_sentinel_rollout_verdict\{verdict="progressing"\} 1$/m);
    expect(metrics).toMatch(/^nachos_sentinel_rollout_canary\{phase="delivering"\} 1$/m);
    const page = (await (await fetch(`http://127.0.0.1:${port}/status.json`)).json()) as { rollout?: { verdict: string } };
    expect(page.rollout?.verdict).toBe('progressing');
  });
});

describe('a canary with a health gate', () => {
  it('gives a good set to everyone after the bake; halts a bad one, gives the canaries the previous set back, and no other directory ever holds it', async ({ central, sidecarOf, yamlDir, root, listen, cli, defer }) => {
    const canaryDir = path.join(root, 'canary');
    const gatewayDir = path.join(root, 'gateway');
    const canaryGw = await ReadingGateway.start(canaryDir);
    const gw = await ReadingGateway.start(gatewayDir);
    defer(() => canaryGw.close());
    defer(() => gw.close());
    const listener = await listen([SUBJECTS.policyRollout]);
    const running = await central({ canary: 'gateway-canary', bake: '1500ms' });
    await sidecarOf('gateway-canary', { 'deliver-to': canaryDir, check: canaryGw.url, interval: `${H}ms` });
    await sidecarOf('gateway', { 'deliver-to': gatewayDir, check: gw.url, interval: `${H}ms` });
    await until(() => onDisk(canaryDir)['a.yaml'] && onDisk(gatewayDir)['a.yaml'], 5000, 'the first set everywhere');
    // The gateway's directory, read throughout: it must never hold the bad rule.
    const seen: string[][] = [];
    const reader = setInterval(() => seen.push(ReadingGateway.ruleIds(gatewayDir)), 10);
    defer(() => clearInterval(reader));

    // A good set: the canary first, everyone after the bake.
    writeSet(yamlDir, { 'a.yaml': ['a1'], 'b.yaml': ['b1'] });
    const canaryGot = await until(() => (onDisk(canaryDir)['b.yaml'] ? performance.now() : undefined), 5000, 'the canary');
    expect(onDisk(gatewayDir)['b.yaml']).toBeUndefined();
    const gatewayGot = await until(() => (onDisk(gatewayDir)['b.yaml'] ? performance.now() : undefined), 10_000, 'everyone');
    expect(gatewayGot - canaryGot).toBeGreaterThanOrEqual(1500);
    expect(listener.on(SUBJECTS.policyRollout).map((e) => e.payload.event)).toEqual(['canary', 'baking', 'released']);

    // A bad set: the canary's gateway goes unhealthy on it; the rollout halts.
    writeSet(yamlDir, { 'a.yaml': ['a1'], 'b.yaml': ['b1'], 'c.yaml': [BAD_RULE] });
    await until(() => ReadingGateway.ruleIds(canaryDir).includes(BAD_RULE), 5000, 'the canary to get the bad set');
    const halted = await until(() => listener.on(SUBJECTS.policyRollout).find((e) => e.payload.event === 'halted'), 10_000, 'the halt');
    expect(halted.payload.message).toMatch(/^halted: gateway-canary\/\S+ unhealthy \d+ s after delivery of [0-9a-f]{12}: .+; the canaries are given [0-9a-f]{12} back$/);
    await until(() => !ReadingGateway.ruleIds(canaryDir).includes(BAD_RULE) && onDisk(canaryDir)['b.yaml'], 5000, 'the canary given the previous set back');
    // It stays halted: the bad set is offered to nobody else, for as long as we look.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    clearInterval(reader);
    expect(seen.length).toBeGreaterThan(100);
    expect(seen.some((ids) => ids.includes(BAD_RULE))).toBe(false);
    expect(ReadingGateway.ruleIds(canaryDir)).not.toContain(BAD_RULE);
    const status = await cli(['rollout', 'status']);
    expect(status).toMatchObject({ code: 1, stdout: expect.stringMatching(/^halted: gateway-canary\//) });
    expect(running.lines.some((l) => /^halted: gateway-canary/.test(String(l.msg)))).toBe(true);

    // Aborting needs a running canary; promoting the halted one by hand gives it to everyone.
    expect(await cli(['rollout', 'abort'])).toMatchObject({ code: 1, stderr: expect.stringContaining('no canary is running') });
    expect(await cli(['rollout', 'promote', '--reason', 'decided by hand'])).toMatchObject({ code: 0, stdout: expect.stringContaining('promoted by hand') });
    await until(() => ReadingGateway.ruleIds(gatewayDir).includes(BAD_RULE), 5000, 'the promoted set everywhere');
  });

  it('refuses, at a sidecar outside the audience, a canary\'s set however it arrives, and a tampered audience anywhere', async ({ sidecarOf, root, listen }) => {
    const key = signingKey(root);
    const outside = path.join(root, 'outside');
    const inside = path.join(root, 'inside');
    const other = await sidecarOf('gateway', { 'deliver-to': outside, 'public-key': key.publicKey, interval: `${H}ms` });
    const canary = await sidecarOf('gateway-canary', { 'deliver-to': inside, 'public-key': key.publicKey, interval: `${H}ms` });
    await other.connected();
    await canary.connected();
    const publisher = await listen([]);
    // A canary's set, signed for gateway-canary only (v4), published on the reload subject.
    const { ReloadSigner } = await import('../../src/policy/signature.js');
    const { loadSeedFile } = await import('../../src/trust/seed-file.js');
    const signer = new ReloadSigner(loadSeedFile(key.seedFile, 'seed').key);
    const forCanary = makeReload({ files: { 'a.yaml': policyYaml('canary-only') }, signer, audience: ['gateway-canary'] });
    publisher.nc.publish(SUBJECTS.policyReload, JSON.stringify(forCanary.message));
    await until(() => onDisk(inside)['a.yaml']?.includes('canary-only'), 5000, 'the canary to take it');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(onDisk(outside)).toEqual({});
    // The audience rewritten to include everyone: the signature no longer holds.
    const tampered = structuredClone(forCanary.message) as unknown as { payload: { audience: string[] } };
    tampered.payload.audience = ['gateway-canary', 'gateway'];
    publisher.nc.publish(SUBJECTS.policyReload, JSON.stringify(tampered));
    // The audience removed (a set for everyone, as v3): the signature no longer holds either.
    const stripped = structuredClone(forCanary.message) as unknown as { payload: Record<string, unknown> };
    delete stripped.payload.audience;
    stripped.payload.schemaVersion = 3;
    publisher.nc.publish(SUBJECTS.policyReload, JSON.stringify(stripped));
    await until(() => (other.sidecar.receiver?.refused['bad signature'] ?? 0) >= 2, 5000, 'both refused');
    expect(onDisk(outside)).toEqual({});
  });
});

describe('the history in JetStream', () => {
  it('two central sentinels watching one directory append each change once: the history never forks', async ({ startServer, sentinel, yamlDir, root }) => {
    const server = await startServer({ jetstream: true });
    const flags = { servers: server.url, interval: `${H}ms`, policies: yamlDir, 'history-store': 'jetstream' };
    const one = await sentinel({ ...flags, 'state-dir': path.join(root, 's1') });
    const two = await sentinel({ ...flags, 'state-dir': path.join(root, 's2') });
    await one.connected();
    await two.connected();
    const revisions: string[] = [];
    for (let i = 2; i <= 6; i++) {
      writeSet(yamlDir, { 'a.yaml': ['a1', `a${i}`] });
      await until(() => one.sentinel.rollout.inForce?.ruleCount === 2 && one.sentinel.rollout.inForce.revision === two.sentinel.rollout.inForce?.revision && !revisions.includes(one.sentinel.rollout.inForce.revision), 5000, `change ${i}`);
      revisions.push(one.sentinel.rollout.inForce?.revision as string);
    }
    await one.sentinel.rollout.flushed();
    await two.sentinel.rollout.flushed();
    const nc = await connect({ servers: server.url });
    const store = new JetStreamHistoryStore({ connection: async () => nc, stream: 'NACHOS_POLICY_HISTORY', deployment: '', readOnly: true });
    const entries = (await store.list(100)).reverse();
    await nc.close();
    expect(entries.map((e) => e.n)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(entries.slice(1).map((e) => e.revision)).toEqual(revisions);
    expect(new Set(entries.map((e) => e.by)).size).toBeGreaterThanOrEqual(1);
  });

  it('keeps three replicas in a three-node JetStream cluster, and appends through the loss of one node', async ({ sentinel, yamlDir, root, defer }) => {
    const cluster = await NatsCluster.start(3, { jetstream: true });
    defer(() => cluster.stop());
    const flags = { interval: `${H}ms`, policies: yamlDir, 'history-store': 'jetstream', 'history-replicas': '3' };
    const one = await sentinel({ ...flags, servers: cluster.urls[0] as string, 'state-dir': path.join(root, 's1') });
    const two = await sentinel({ ...flags, servers: cluster.urls[1] as string, 'state-dir': path.join(root, 's2') });
    await one.connected();
    await two.connected();
    await until(async () => ((await one.sentinel.history?.index().catch(() => [])) ?? []).length === 1, 20_000, 'the first entry (the stream made, its leader elected)');
    const nc = await connect({ servers: cluster.urls[2] });
    defer(() => nc.close());
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info('NACHOS_POLICY_HISTORY')).config.num_replicas).toBe(3);
    writeSet(yamlDir, { 'a.yaml': ['a1', 'a2'] });
    await until(async () => (await two.sentinel.history?.index())?.length === 2, 10_000, 'the second entry');
    // A node goes: two of three still make a quorum.
    await cluster.servers[2]?.kill();
    writeSet(yamlDir, { 'a.yaml': ['a1', 'a3'] });
    await until(async () => (await one.sentinel.history?.index())?.length === 3, 30_000, 'the third entry, one node down');
    const entries = await one.sentinel.history?.list(10);
    expect(entries?.map((e) => e.n)).toEqual([3, 2, 1]);
    expect(new Set(entries?.map((e) => e.revision)).size).toBe(3);
    // Nothing was given up on while a leader was elected again: the history has no gap.
    expect(one.sentinel.rollout.historyFailures + two.sentinel.rollout.historyFailures).toBe(0);
  }, 90_000);

  it('never records an event a replica saw late on top of what the history moved on to (each replica with its own view of the stream)', async ({ startServer }) => {
    const server = await startServer({ jetstream: true });
    const nc = await connect({ servers: server.url });
    const open = () => new JetStreamHistoryStore({ connection: async () => nc, stream: 'NACHOS_POLICY_HISTORY', deployment: '' });
    const a = open();
    const b = open();
    // b reads the stream while it is still empty: its view lags from here on.
    expect(await b.index()).toEqual([]);
    const set = (...ids: string[]) => {
      const built = buildSnapshot([{ path: 'a.yaml', kind: 'policy', content: Buffer.from(policyYaml(...ids)) }], [], { allowEmpty: false });
      if (!built.ok) throw new Error('invalid');
      return built.snapshot;
    };
    const accepted = (snapshot: Snapshot, previous: Snapshot | undefined, by: string) => acceptedEntry(snapshot, previous, { by });
    const [one, two] = [set('a1'), set('a1', 'a2')];
    const first = accepted(one, undefined, 'sentinel/a');
    expect((await a.append(first.entry, first.contents)).appended).toBe(true);
    const second = accepted(two, one, 'sentinel/a');
    expect((await a.append(second.entry, second.contents)).appended).toBe(true);
    // b, late, records its own start on the first set: the history has moved on; nothing is appended.
    const late = accepted(one, undefined, 'sentinel/b');
    expect(await b.append(late.entry, late.contents)).toMatchObject({ appended: false, entry: { n: 2, revision: two.revision } });
    // b, late, sees the change a saw: recorded once.
    const same = accepted(two, one, 'sentinel/b');
    expect(await b.append(same.entry, same.contents)).toMatchObject({ appended: false, entry: { n: 2 } });
    expect((await a.index()).map((e) => [e.n, e.revision])).toEqual([
      [1, one.revision],
      [2, two.revision],
    ]);
    await nc.close();
  });

  it('a sidecar that starts while every central sentinel is down delivers the newest verified set from the stream, and refuses a forged or older one there', async ({ startServer, sentinel, sidecarOf, yamlDir, root, listen }) => {
    const server = await startServer({ jetstream: true });
    const key = signingKey(root);
    const listener = await listen([SUBJECTS.policyReload], server.url);
    const central = await sentinel({ servers: server.url, interval: `${H}ms`, policies: yamlDir, 'history-store': 'jetstream', 'signing-seed': key.seedFile });
    await central.connected();
    writeSet(yamlDir, { 'a.yaml': ['a1', 'newest'] });
    await until(() => central.sentinel.rollout.inForce?.ruleCount === 2, 5000, 'the newest set');
    const newest = central.sentinel.rollout.inForce?.revision as string;
    await until(() => listener.on(SUBJECTS.policyReload).some((e) => e.payload.revision === newest), 5000, 'its announcement');
    const older = listener.on(SUBJECTS.policyReload).find((e) => e.payload.revision !== newest);
    // Its statement is in the stream before the sentinel goes.
    const nc = await connect({ servers: server.url });
    const jsm = await jetstreamManager(nc);
    const current = historySubjects('').current;
    await until(async () => (await jsm.streams.getMessage('NACHOS_POLICY_HISTORY', { last_by_subj: current }))?.json<{ payload: { revision: string } }>().payload.revision === newest, 5000, 'the statement kept');
    await central.close();

    const delivered = path.join(root, 'cold');
    const cold = await sidecarOf('gateway', { servers: server.url, 'deliver-to': delivered, 'public-key': key.publicKey, 'history-store': 'jetstream', interval: `${H}ms` });
    await until(() => cold.sidecar.receiver?.delivered?.revision === newest, 10_000, 'the newest set, from the stream');
    expect(ReadingGateway.ruleIds(delivered)).toContain('newest');

    // An older statement put back in the stream: a sidecar that holds the newer one refuses it (replayed).
    const js = jetstream(nc);
    await js.publish(current, JSON.stringify(older));
    const again = await sidecarOf('gateway', { servers: server.url, 'deliver-to': delivered + '-copy', 'public-key': key.publicKey, 'history-store': 'jetstream', interval: `${H}ms` });
    await until(() => again.sidecar.receiver?.delivered, 10_000, 'a fresh sidecar takes what the stream holds');
    await cold.sidecar.receiver?.connected();
    await until(() => (cold.sidecar.receiver?.refused.replayed ?? 0) >= 1, 5000, 'the older statement refused');
    expect(cold.sidecar.receiver?.delivered?.revision).toBe(newest);

    // A forged statement (another key): refused by a fresh sidecar, whose directory stays empty.
    const forger = signingKey(root, 'forger.nk');
    const { ReloadSigner } = await import('../../src/policy/signature.js');
    const { loadSeedFile } = await import('../../src/trust/seed-file.js');
    const forged = makeReload({ files: { 'a.yaml': policyYaml('forged') }, signer: new ReloadSigner(loadSeedFile(forger.seedFile, 'seed').key) });
    await js.publish(current, JSON.stringify(forged.message));
    const fresh = path.join(root, 'fresh');
    const victim = await sidecarOf('gateway', { servers: server.url, 'deliver-to': fresh, 'public-key': key.publicKey, 'history-store': 'jetstream', interval: `${H}ms` });
    await until(() => (victim.sidecar.receiver?.refused['wrong key'] ?? 0) >= 1, 10_000, 'the forgery refused');
    expect(victim.sidecar.receiver?.delivered).toBeUndefined();
    expect(ReadingGateway.ruleIds(fresh)).toEqual([]);
    await nc.close();
  });
});

describe('sets larger than one message, in JetStream', () => {
  it('stores a file larger than a message in parts, and a sidecar with no sentinel delivers a set whose body travelled apart', async ({ startServer, sentinel, sidecarOf, yamlDir, root }) => {
    // A small max_payload: the set's reload is a head with a transfer, and one file spans two stored parts.
    const server = await startServer({ jetstream: true, config: 'max_payload: 8192\n' });
    const many = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
    writeSet(yamlDir, { 'a.yaml': many('a', 70), 'b.yaml': many('b', 40), 'c.yaml': many('c', 40) });
    const central = await sentinel({ servers: server.url, interval: `${H}ms`, policies: yamlDir, 'history-store': 'jetstream' });
    await central.connected();
    await until(() => central.sentinel.rollout.inForce?.ruleCount === 150, 5000, 'the large set');
    const revision = central.sentinel.rollout.inForce?.revision as string;
    const big = central.sentinel.rollout.inForce?.files.find((f) => f.path === 'a.yaml');
    expect(big?.bytes).toBeGreaterThan(4096);
    const nc = await connect({ servers: server.url });
    const jsm = await jetstreamManager(nc);
    const current = historySubjects('').current;
    await until(async () => {
      const m = await jsm.streams.getMessage('NACHOS_POLICY_HISTORY', { last_by_subj: current });
      return m?.json<{ payload: { revision: string; transfer?: unknown } }>().payload.transfer !== undefined && m.json<{ payload: { revision: string } }>().payload.revision === revision;
    }, 5000, 'a head with a transfer kept in the stream');
    await central.sentinel.rollout.flushed();
    // The file in two parts, read back whole by its digest.
    expect(await jsm.streams.getMessage('NACHOS_POLICY_HISTORY', { last_by_subj: historySubjects('').blob(big?.sha256 as string, 1) })).not.toBeNull();
    const store = new JetStreamHistoryStore({ connection: async () => nc, stream: 'NACHOS_POLICY_HISTORY', deployment: '', readOnly: true });
    expect((await store.content(big?.sha256 as string))?.toString()).toBe(policyYaml(...many('a', 70)));
    await central.close();

    const delivered = path.join(root, 'cold');
    const cold = await sidecarOf('gateway', { servers: server.url, 'deliver-to': delivered, 'history-store': 'jetstream', interval: `${H}ms` });
    await until(() => cold.sidecar.receiver?.delivered?.revision === revision, 10_000, 'the large set, from the stream');
    expect(onDisk(delivered)).toEqual({ 'a.yaml': policyYaml(...many('a', 70)), 'b.yaml': policyYaml(...many('b', 40)), 'c.yaml': policyYaml(...many('c', 40)) });
    await nc.close();
  });
});

// The stand-in's own sanity: it reads what a loader reads.
describe('the stand-in gateway', () => {
  it('reads YAML rule ids as a loader would, skipping a file that does not parse and every other extension', async ({ root }) => {
    const d = path.join(root, 'd');
    mkdirSync(d);
    writeFileSync(path.join(d, 'a.yaml'), policyYaml('x', BAD_RULE));
    writeFileSync(path.join(d, 'b.yml'), 'rules: [');
    writeFileSync(path.join(d, 'c.toml'), '[[rules]]\nid = "toml-only"\n');
    expect(ReadingGateway.ruleIds(d)).toEqual(['x', BAD_RULE]);
  });
});

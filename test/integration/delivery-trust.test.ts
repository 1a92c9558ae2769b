import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect } from 'vitest';
import { ReloadSigner } from '../../src/policy/signature.js';
import { SUBJECTS } from '../../src/protocol/topics.js';
import { SigningKey } from '../../src/trust/ed25519.js';
import { Daemon } from '../helpers/daemon.js';
import { test, type RunningSidecar } from '../helpers/fixtures.js';
import { policyYaml } from '../helpers/policy-files.js';
import { makeReload, serveParts, type ReloadMessage } from '../helpers/reloads.js';
import { signingKey } from '../helpers/signing.js';
import { quietFor, until } from '../helpers/until.js';

/**
 * Issue 16's breaks on the delivery side, each played against real
 * nats-servers as the outside pass played it: the test is the central
 * sentinel (its messages built by the central's own code and signed by a
 * key of its own), or an impostor holding a captured one.
 */

const H = 200;
const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');
const TRANSFER = 'nachos.system.policy.transfer.impostor-1';

/** The files of a delivery directory as a reader finds them: name -> SHA-256 (through the links). */
function onDisk(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const name of readdirSync(dir).filter((n) => !n.startsWith('.'))) files[name] = sha256(readFileSync(path.join(dir, name)));
  return files;
}

/** The files a reload announces: name -> SHA-256. */
function announced(message: ReloadMessage): Record<string, string> {
  return Object.fromEntries((message.payload.files ?? []).map((f) => [f.path, f.sha256]));
}

const it = test
  .extend('deliverDir', async ({ root }) => path.join(root, 'delivered'))
  .extend('key', async ({ root }) => {
    const key = signingKey(root);
    return { ...key, signer: new ReloadSigner(new SigningKey(key.seed)) };
  })
  .extend('bus', async ({ listen }) => listen([]))
  .extend('signedSidecar', async ({ sidecarOf, deliverDir, key }) => async (flags: Record<string, string | boolean | string[]> = {}): Promise<RunningSidecar> => {
    const running = await sidecarOf('gateway', { 'deliver-to': deliverDir, 'public-key': key.publicKey, interval: `${H}ms`, ...flags });
    await running.connected();
    return running;
  });

describe('issue 16, delivery: ordered, complete, fresh', () => {
  it('ends on the newest set: a large set still being fetched is dropped for a smaller one issued after it (break 3)', async ({ bus, key, signedSidecar, deliverDir }) => {
    const running = await signedSidecar();
    const now = Date.now();
    const large = makeReload({ files: { 'large.yaml': policyYaml('l1', 'l2', 'l3') }, signer: key.signer, issuedAt: now - 1000, transfer: { subject: TRANSFER, partBytes: 200 } });
    // Each part answered slowly: the fetch is still going when the newer set arrives.
    const parts = serveParts(bus.nc, TRANSFER, large.body as Uint8Array, 200, () => ({ delayMs: 300 }));
    bus.nc.publish(SUBJECTS.policyReload, JSON.stringify(large.message));
    await until(() => parts.asked() >= 1, 5000, 'the large set being fetched');
    const small = makeReload({ files: { 'small.yaml': policyYaml('s1') }, signer: key.signer, issuedAt: now });
    bus.nc.publish(SUBJECTS.policyReload, JSON.stringify(small.message));
    await until(() => running.sidecar.receiver?.delivered?.revision === small.message.payload.revision, 5000, 'the small set');
    // Long enough for the whole large body to have been fetched had it gone on.
    const total = Math.ceil((large.body as Uint8Array).byteLength / 200);
    await quietFor(total * 300 + 500);
    expect(running.sidecar.receiver?.delivered?.revision).toBe(small.message.payload.revision);
    expect(onDisk(deliverDir)).toEqual(announced(small.message));
    expect(parts.asked()).toBeLessThan(total);
  });

  it('tries a body that failed to come again until it is delivered, without waiting for the next change (break 5)', async ({ bus, key, signedSidecar, deliverDir }) => {
    const running = await signedSidecar();
    const set = makeReload({ files: { 'p.yaml': policyYaml('p1', 'p2') }, signer: key.signer, transfer: { subject: TRANSFER, partBytes: 300 } });
    // The first requests fail (a pause, an impostor, a shed): the set must still arrive.
    const parts = serveParts(bus.nc, TRANSFER, set.body as Uint8Array, 300, (_part, asked) => (asked <= 2 ? 'error' : 'answer'));
    bus.nc.publish(SUBJECTS.policyReload, JSON.stringify(set.message));
    await until(() => running.sidecar.receiver?.failure, 5000, 'the failure said');
    expect(running.sidecar.heartbeat.payload().details.policy_delivery?.message).toMatch(/^could not fetch revision \w{12}: .*busy/);
    await until(() => running.sidecar.receiver?.delivered?.revision === set.message.payload.revision, 15_000, 'the set, fetched again');
    expect(onDisk(deliverDir)).toEqual(set.files);
    expect(parts.asked()).toBeGreaterThan(2);
    expect(running.sidecar.receiver?.failure).toBeUndefined();
  });

  it('a fresh sidecar refuses an old signed set whose statement expired, from an impostor answering policy.current or replaying it (break 4)', async ({ bus, key, signedSidecar, deliverDir }) => {
    // Captured three hours ago, signed for one hour.
    const old = makeReload({ files: { 'old.yaml': policyYaml('o1') }, signer: key.signer, issuedAt: Date.now() - 3 * 3_600_000, validForMs: 3_600_000 });
    // The impostor answers every policy.current request with it.
    bus.nc.subscribe(SUBJECTS.policyCurrent, { callback: (_e, msg) => void msg.respond(JSON.stringify(old.message)) });
    await bus.nc.flush();
    const running = await signedSidecar();
    bus.nc.publish(SUBJECTS.policyReload, JSON.stringify(old.message));
    await until(() => (running.sidecar.receiver?.refused.expired ?? 0) >= 2, 5000, 'both refused as expired');
    await quietFor(300);
    expect(running.sidecar.receiver?.delivered).toBeUndefined();
    expect(existsSync(path.join(deliverDir, 'old.yaml'))).toBe(false);
    // A set issued now is taken.
    const fresh = makeReload({ files: { 'new.yaml': policyYaml('n1') }, signer: key.signer });
    bus.nc.publish(SUBJECTS.policyReload, JSON.stringify(fresh.message));
    await until(() => running.sidecar.receiver?.delivered?.revision === fresh.message.payload.revision, 5000, 'the fresh set');
  });

  it('refuses a set issued a year ahead, which never moves the replay mark, across a restart too (break 10)', async ({ bus, key, signedSidecar, deliverDir }) => {
    let running = await signedSidecar();
    const ahead = makeReload({ files: { 'ahead.yaml': policyYaml('x1') }, signer: key.signer, issuedAt: Date.now() + 365 * 24 * 3_600_000 });
    bus.nc.publish(SUBJECTS.policyReload, JSON.stringify(ahead.message));
    await until(() => running.sidecar.receiver?.refused['from the future'] === 1, 5000, 'the refusal');
    const now = makeReload({ files: { 'now.yaml': policyYaml('n1') }, signer: key.signer });
    bus.nc.publish(SUBJECTS.policyReload, JSON.stringify(now.message));
    await until(() => running.sidecar.receiver?.delivered?.revision === now.message.payload.revision, 5000, 'the set of now');
    await running.close();
    running = await signedSidecar();
    bus.nc.publish(SUBJECTS.policyReload, JSON.stringify(ahead.message));
    const later = makeReload({ files: { 'later.yaml': policyYaml('l1') }, signer: key.signer });
    bus.nc.publish(SUBJECTS.policyReload, JSON.stringify(later.message));
    await until(() => running.sidecar.receiver?.delivered?.revision === later.message.payload.revision, 5000, 'the later set, after the restart');
    expect(running.sidecar.receiver?.refused['from the future']).toBe(1);
    expect(onDisk(deliverDir)).toEqual(announced(later.message));
  });

  it('refuses a set signed by the right key for another deployment, or signed as another kind of message (break 13)', async ({ bus, key, signedSidecar }) => {
    const running = await signedSidecar({ deployment: 'prod' });
    const staging = makeReload({ files: { 's.yaml': policyYaml('s1') }, signer: key.signer, deployment: 'staging' });
    bus.nc.publish(SUBJECTS.policyReload, JSON.stringify(staging.message));
    // The same set signed as a policy.current reply of old (another type): not a reload.
    const other = makeReload({ files: { 'o.yaml': policyYaml('o1') }, deployment: 'prod' }).message;
    other.type = 'system.policy.current';
    key.signer.sign(other);
    bus.nc.publish(SUBJECTS.policyReload, JSON.stringify(other));
    await until(() => running.sidecar.receiver?.refused['wrong deployment'] === 1 && running.sidecar.receiver?.refused['not a reload'] === 1, 5000, 'both refused');
    expect(running.sidecar.receiver?.delivered).toBeUndefined();
    const prod = makeReload({ files: { 'p.yaml': policyYaml('p1') }, signer: key.signer, deployment: 'prod' });
    bus.nc.publish(SUBJECTS.policyReload, JSON.stringify(prod.message));
    await until(() => running.sidecar.receiver?.delivered?.revision === prod.message.payload.revision, 5000, 'the prod set');
  });

  it('with signing off, never sends a request to a subject a forged head names, and bounds what heads make it hold (break 12)', async ({ bus, sidecarOf, deliverDir, listen }) => {
    const running = await sidecarOf('gateway', { 'deliver-to': deliverDir, interval: `${H}ms` });
    await running.connected();
    const watcher = await listen(['$JS.API.>', '_INBOX.never.>']);
    const base = makeReload({ files: { 'a.yaml': policyYaml('a1') }, transfer: { subject: TRANSFER, partBytes: 100 } }).message;
    for (const subject of ['$JS.API.STREAM.PURGE.policies', '_INBOX.never.1']) {
      const forged = structuredClone(base);
      if (forged.payload.transfer) forged.payload.transfer.subject = subject;
      bus.nc.publish(SUBJECTS.policyReload, JSON.stringify(forged));
    }
    await until(() => running.sidecar.receiver?.refused.malformed === 2, 5000, 'both heads refused');
    await quietFor(200);
    expect(watcher.messages).toEqual([]);

    // Six heads announcing 40 MB each, on a transfer subject nobody answers: nothing of that size is held.
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 6; i++) {
      const head = structuredClone(base);
      head.payload.revision = sha256(`fake-${i}`);
      head.payload.issuedAt = new Date(Date.now() - 10_000 + i).toISOString();
      head.payload.transfer = { subject: TRANSFER, sha256: sha256(`body-${i}`), bytes: 40 * 1024 * 1024, parts: 40, partBytes: 1024 * 1024 };
      bus.nc.publish(SUBJECTS.policyReload, JSON.stringify(head));
    }
    await until(() => running.sidecar.receiver?.failure, 5000, 'the fetch failing');
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(20 * 1024 * 1024);
  });

  it('refuses once, and reports, a set that can never be written; it leaves nothing behind and does not hold a newer set back (break 12)', async ({ bus, sidecarOf, deliverDir }) => {
    const running = await sidecarOf('gateway', { 'deliver-to': deliverDir, interval: `${H}ms` });
    await running.connected();
    const first = makeReload({ files: { 'a.yaml': policyYaml('a1') }, issuedAt: Date.now() - 3000 });
    bus.nc.publish(SUBJECTS.policyReload, JSON.stringify(first.message));
    await until(() => running.sidecar.receiver?.delivered?.revision === first.message.payload.revision, 5000, 'the first set');
    // Two files of one name: consistent (each hashes to what it says), but no directory can hold both.
    const twice = makeReload({ files: { 'b.yaml': policyYaml('b1') }, issuedAt: Date.now() - 2000 }).message;
    twice.payload.files = [...(twice.payload.files ?? []), ...(twice.payload.files ?? [])];
    const { computeRevision } = await import('../../src/policy/revision.js');
    twice.payload.revision = computeRevision(twice.payload.files ?? []);
    bus.nc.publish(SUBJECTS.policyReload, JSON.stringify(twice));
    await until(() => running.sidecar.receiver?.refused.unwritable === 1, 5000, 'the refusal');
    expect(running.sidecar.heartbeat.payload()).toMatchObject({ checks: { policy_delivery: 'error' } });
    expect(running.sidecar.heartbeat.payload().details.policy_delivery?.message).toMatch(/can never be delivered .*two files are named "b\.yaml"/);
    // Announced again (a reconnect, a replica): not tried again.
    bus.nc.publish(SUBJECTS.policyReload, JSON.stringify(twice));
    await quietFor(1500);
    expect(running.sidecar.receiver?.refused.unwritable).toBe(1);
    expect(readdirSync(deliverDir).filter((n) => n.startsWith('..') && n !== '..data')).toHaveLength(1);
    // A name longer than a file name may be: refused as unsafe, at once.
    const long = makeReload({ files: { [`${'n'.repeat(300)}.yaml`]: policyYaml('c1') }, issuedAt: Date.now() - 1000 });
    bus.nc.publish(SUBJECTS.policyReload, JSON.stringify(long.message));
    await until(() => running.sidecar.receiver?.refused['unsafe name'] === 1, 5000, 'the long name refused');
    // A name that is long, but not too long, is delivered (its temporary link name is short).
    const newer = makeReload({ files: { [`${'m'.repeat(250)}.yaml`]: policyYaml('d1') } });
    bus.nc.publish(SUBJECTS.policyReload, JSON.stringify(newer.message));
    await until(() => running.sidecar.receiver?.delivered?.revision === newer.message.payload.revision, 5000, 'the newer set');
    expect(onDisk(deliverDir)).toEqual(announced(newer.message));
    expect(running.sidecar.heartbeat.payload()).toMatchObject({ checks: { policy_delivery: 'ok' } });
  });

  it('never removes files it did not write: a directory holding some is refused at start, or taken over with --take-over, moved aside (break 11)', async ({ root, bus, sidecarOf, deliverDir, server }) => {
    mkdirSync(path.join(deliverDir, '..backup'), { recursive: true });
    writeFileSync(path.join(deliverDir, '..backup', 'kept.yaml'), 'version: "1.0"\nrules: []\n');
    writeFileSync(path.join(deliverDir, 'local.toml'), 'version = "1.0"\n');
    writeFileSync(path.join(deliverDir, 'other.yml'), 'version: "1.0"\nrules: []\n');
    const before = Object.fromEntries(['..backup/kept.yaml', 'local.toml', 'other.yml'].map((f) => [f, readFileSync(path.join(deliverDir, f), 'utf8')]));
    await expect(sidecarOf('gateway', { 'deliver-to': deliverDir, interval: `${H}ms` })).rejects.toThrow(/holds files the sidecar did not write \(\.\.backup, local\.toml, other\.yml\).*--take-over/);
    const refused = await Daemon.run(['sidecar', '--servers', server.url, '--component', 'gateway', '--deliver-to', deliverDir], {}, root);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('holds files the sidecar did not write');
    for (const [f, text] of Object.entries(before)) expect(readFileSync(path.join(deliverDir, f), 'utf8')).toBe(text);

    const running = await sidecarOf('gateway', { 'deliver-to': deliverDir, 'take-over': true, interval: `${H}ms` });
    await running.connected();
    const aside = readdirSync(deliverDir).find((n) => n.startsWith('..taken-over-')) as string;
    for (const [f, text] of Object.entries(before)) expect(readFileSync(path.join(deliverDir, aside, f), 'utf8')).toBe(text);
    const set = makeReload({ files: { 'a.yaml': policyYaml('a1') } });
    bus.nc.publish(SUBJECTS.policyReload, JSON.stringify(set.message));
    await until(() => running.sidecar.receiver?.delivered, 5000, 'the delivery');
    expect(onDisk(deliverDir)).toEqual(announced(set.message));
    // Someone's file written beside the set while it runs: never written over, never removed, and said.
    writeFileSync(path.join(deliverDir, 'extra.yaml'), 'version: "1.0"\nrules: []\n');
    const next = makeReload({ files: { 'b.yaml': policyYaml('b1') } });
    bus.nc.publish(SUBJECTS.policyReload, JSON.stringify(next.message));
    await until(() => running.sidecar.receiver?.delivered?.revision === next.message.payload.revision, 5000, 'the next set');
    expect(readFileSync(path.join(deliverDir, 'extra.yaml'), 'utf8')).toBe('version: "1.0"\nrules: []\n');
    expect(running.sidecar.heartbeat.payload().details.policy_delivery?.message).toMatch(/also holds files the sidecar did not write.*extra\.yaml/);
    for (const [f, text] of Object.entries(before)) expect(readFileSync(path.join(deliverDir, aside, f), 'utf8')).toBe(text);
  });
});

describe('issue 16, delivery: a kill at any moment', () => {
  it('after SIGKILL during deliveries of 400-file sets, a restart finds one whole set, repairs the links, and refuses an older set (break 6)', async ({ root, server, bus, key, deliverDir }) => {
    const sets = [0, 1, 2, 3].map((v) => {
      const files: Record<string, string> = {};
      // Alternate names as well as contents: links are added and removed on each delivery.
      for (let i = 0; i < 400; i++) files[`p${(i + v * 37) % 500}.yaml`] = policyYaml(`r${i}-v${v}`);
      return files;
    });
    const args = ['sidecar', '--servers', server.url, '--component', 'gateway', '--deliver-to', deliverDir, '--public-key', key.publicKey, '--interval', `${H}ms`];
    let issuedAt = Date.now() - 60_000;
    const wholes = new Set<string>();
    let oldest: ReloadMessage | undefined;
    let delivered = 0;
    const kills = Number(process.env.KILL_ROUNDS ?? 12);
    for (let round = 0; round < kills; round++) {
      const d = Daemon.start(args, {}, root);
      try {
        await d.waitForLog((l) => l.msg === 'connected to the bus', 10_000);
        // Repaired: the set on disk is whole, one that was announced, every name a link into ..data.
        const disk = onDisk(deliverDir);
        if (Object.keys(disk).length > 0) expect(wholes.has(JSON.stringify(disk)), `round ${round}: the directory holds a set that was announced, whole`).toBe(true);
        for (const name of readdirSync(deliverDir).filter((n) => !n.startsWith('.'))) expect(readlinkSync(path.join(deliverDir, name))).toBe(`..data/${name}`);
        expect(readdirSync(deliverDir).filter((n) => n.startsWith('..') && n !== '..data').length).toBeLessThanOrEqual(1);
        // The replay check starts from what the directory holds: the first set, older than it, is refused.
        if (oldest && Object.keys(disk).length > 0 && JSON.stringify(disk) !== JSON.stringify(announced(oldest))) {
          bus.nc.publish(SUBJECTS.policyReload, JSON.stringify(oldest));
          await d.waitForLog((l) => l.reason === 'replayed', 5000, `round ${round}: the older set refused`);
        }
        issuedAt += 1000;
        const set = makeReload({ files: sets[round % sets.length] as Record<string, string>, signer: key.signer, issuedAt, sequence: round + 1 });
        oldest ??= set.message;
        wholes.add(JSON.stringify(announced(set.message)));
        bus.nc.publish(SUBJECTS.policyReload, JSON.stringify(set.message));
        // Killed at a random moment: before, during or just after the delivery. The first round delivers
        // whole, so that there is a set to repair whatever the machine's load (a busy machine once killed
        // every round before its delivery, and the last restart found nothing to say).
        if (round === 0) await d.waitForLog((l) => l.msg === 'delivered the policy set', 20_000);
        else await quietFor(Math.floor(Math.random() * 400));
        d.kill();
        await d.stop();
        if (d.logs.some((l) => l.msg === 'delivered the policy set')) delivered++;
      } finally {
        d.kill();
      }
    }
    // The last restart, with no central sentinel: the directory repaired and whole.
    const d = Daemon.start(args, {}, root);
    try {
      await d.waitForLog((l) => String(l.msg).startsWith('the delivery directory holds a verified set'), 20_000);
      const disk = onDisk(deliverDir);
      expect(wholes.has(JSON.stringify(disk))).toBe(true);
    } finally {
      await d.stop();
    }
  }, 120_000);
});

describe('issue 16, freshness and telling the neighbour', () => {
  it('re-signs the set in force before its statement expires; a sidecar cut off from it keeps the set and says since when it is unconfirmed', async ({ sentinel, signedSidecar, key, listen, deliverDir }) => {
    const reloads = await listen([SUBJECTS.policyReload]);
    const central = await sentinel({ interval: `${H}ms`, 'signing-seed': key.seedFile, 'expires-after': '2s' });
    const running = await signedSidecar();
    const [first] = await reloads.waitFor(SUBJECTS.policyReload, 1);
    await until(() => running.sidecar.receiver?.delivered, 5000, 'the delivery');
    // Announced again at half the validity: the same set, a newer statement; the sidecar's confirmation follows.
    const refresh = await until(() => reloads.on(SUBJECTS.policyReload).find((e) => e.payload.reason === 'refresh'), 5000, 'a refresh');
    expect(refresh.payload.revision).toBe(first?.payload.revision);
    expect(Date.parse(String(refresh.payload.issuedAt)) - Date.parse(String(first?.payload.issuedAt))).toBeGreaterThanOrEqual(900);
    await until(() => running.sidecar.receiver?.delivered?.issuedAt === refresh.payload.issuedAt, 5000, 'the confirmation recorded');
    expect(running.sidecar.heartbeat.payload().checks.policy_delivery).toBe('ok');
    // The central sentinel gone: once the newest statement expires, the set stays, and the heartbeat says so.
    const before = onDisk(deliverDir);
    await central.close();
    await until(() => running.sidecar.heartbeat.payload().checks.policy_delivery === 'error', 6000, 'the expiry said');
    expect(running.sidecar.heartbeat.payload().details.policy_delivery?.message).toMatch(/was last confirmed by a statement issued \d+ s ago, which expired \d+ s ago; kept/);
    expect(onDisk(deliverDir)).toEqual(before);
  });

  it('keeps secrets in a reload URL out of the log, heartbeats, status replies and the status page; credentials go in a header (break 8)', async ({ root, sentinel, sidecarOf, deliverDir, listen }) => {
    const { createServer } = await import('node:http');
    const seen: { url?: string; auth?: string }[] = [];
    const gateway = createServer((req, res) => {
      seen.push({ url: req.url, auth: req.headers.authorization });
      res.writeHead(500).end();
    });
    await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
    const port = (gateway.address() as { port: number }).port;
    try {
      const beats = await listen([SUBJECTS.health]);
      const central = await sentinel({ interval: `${H}ms`, require: 'gateway' });
      await central.connected();
      const running = await sidecarOf('gateway', {
        'deliver-to': deliverDir,
        'reload-url': `http://127.0.0.1:${port}/reload?token=s3cr3t-token`,
        'reload-header': 'Authorization: Bearer hdr-s3cr3t',
        interval: `${H}ms`,
      });
      await until(() => running.sidecar.notifier.failure, 5000, 'the failing POST');
      expect(seen[0]).toEqual({ url: '/reload?token=s3cr3t-token', auth: 'Bearer hdr-s3cr3t' });
      expect(running.sidecar.notifier.failure).toBe(`POST http://127.0.0.1:${port}/reload?token=*** answered HTTP 500`);
      await until(() => beats.on(SUBJECTS.health).some((e) => JSON.stringify(e).includes('token=***')), 5000, 'the failure in a heartbeat');
      const status = await beats.nc.request(SUBJECTS.healthStatus, '', { timeout: 2000 });
      const page = await (await fetch(`http://127.0.0.1:${central.sentinel.httpAddress?.port}/status.json`)).text();
      for (const seenBy of [JSON.stringify(running.lines), JSON.stringify(beats.messages), new TextDecoder().decode(status.data), page, JSON.stringify(central.lines)]) {
        expect(seenBy).not.toContain('s3cr3t');
      }
      // A user and password in the URL can never work (fetch refuses them): refused at start, not retried for ever, not printed.
      const { resolveConfig } = await import('../../src/config/resolve.js');
      const { SIDECAR_SETTINGS } = await import('../../src/cli/sidecar.js');
      expect(() => resolveConfig({ flags: { 'reload-url': 'http://admin:pa55word@gw:8080/reload' }, env: {}, cwd: root }, SIDECAR_SETTINGS)).toThrow(
        /--reload-url: http:\/\/\*\*\*@gw:8080\/reload carries a user name or password, which fetch never sends; give them in a header instead: --reload-header/,
      );
    } finally {
      gateway.close();
    }
  });

  it('runs reload commands one at a time, the last one for the newest set (break 13)', async ({ root, bus, sidecarOf, deliverDir }) => {
    const log = path.join(root, 'runs.log');
    const lock = path.join(root, 'lock');
    // Says "overlap" when a run starts while another is still running.
    const command = `mkdir ${lock} 2>/dev/null || echo overlap >> ${log}; echo "$NACHOS_POLICY_REVISION" >> ${log}; sleep 0.4; rmdir ${lock} 2>/dev/null; true`;
    const running = await sidecarOf('gateway', { 'deliver-to': deliverDir, 'reload-command': command, interval: `${H}ms` });
    await running.connected();
    let last: ReloadMessage | undefined;
    const issued = Date.now() - 30_000;
    for (let i = 0; i < 10; i++) {
      last = makeReload({ files: { 'a.yaml': policyYaml(`v${i}`) }, issuedAt: issued + i * 100 }).message;
      bus.nc.publish(SUBJECTS.policyReload, JSON.stringify(last));
      await quietFor(260);
    }
    await until(() => running.sidecar.receiver?.delivered?.revision === last?.payload.revision, 5000, 'the last set');
    await until(() => readFileSync(log, 'utf8').trim().split('\n').at(-1) === last?.payload.revision, 10_000, 'the last run for the newest set');
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    expect(lines).not.toContain('overlap');
    expect(lines.length).toBeLessThan(10);
  });
});

describe("the subscriber recipe of docs/signing.md", () => {
  it('runs as written against a signed central sentinel: each set applied once, in order', async ({ root, dir, sentinel, key, server, defer }) => {
    const { symlinkSync, mkdirSync: mkdir } = await import('node:fs');
    const { spawn } = await import('node:child_process');
    const repo = path.resolve(import.meta.dirname, '../..');
    const block = [...readFileSync(path.join(repo, 'docs/signing.md'), 'utf8').matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] ?? '').find((b) => b.includes('new ReloadApplier'));
    expect(block).toBeDefined();
    // The package as a user installs it (this checkout, built), and the NATS client beside it.
    const app = path.join(root, 'app');
    mkdir(path.join(app, 'node_modules'), { recursive: true });
    symlinkSync(repo, path.join(app, 'node_modules', 'nachos-sentinel'));
    symlinkSync(path.join(repo, 'node_modules', '@nats-io'), path.join(app, 'node_modules', '@nats-io'));
    writeFileSync(
      path.join(app, 'recipe.mjs'),
      `import { connect } from '@nats-io/transport-node';\nconst nc = await connect({ servers: process.env.NATS_URL });\n` +
        `const apply = (files) => process.stdout.write(files.map((f) => f.path).sort().join(',') + '\\n');\n${block}`,
    );
    // The recipe is for a deployment named prod.
    await sentinel({ interval: `${H}ms`, 'signing-seed': key.seedFile, deployment: 'prod' });
    const child = spawn(process.execPath, ['recipe.mjs'], { cwd: app, env: { PATH: process.env.PATH ?? '', NATS_URL: server.url, SENTINEL_PUBLIC_KEY: key.publicKey }, stdio: ['ignore', 'pipe', 'pipe'] });
    defer(() => child.kill());
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    await until(() => out.split('\n').includes('a.toml'), 10_000, `the first set applied (stderr: ${err})`);
    writeFileSync(path.join(dir, 'b.toml'), 'version = "1.0"\n[[rules]]\nid = "b1"\npriority = 1\nmatch = { resource = "tool" }\neffect = "deny"\n');
    await until(() => out.split('\n').includes('a.toml,b.toml'), 10_000, 'the second set applied');
    expect(out.trim().split('\n')).toEqual(['a.toml', 'a.toml,b.toml']);
  });
});

describe('issue 16, keys', () => {
  it('rotates keys: new key trusted beside the old, the central switched, the old key removed, what it signed refused', async ({ root, dir, sentinel, signedSidecar, key, listen }) => {
    const reloads = await listen([SUBJECTS.policyReload]);
    const next = signingKey(root, 'next.nk');
    let central = await sentinel({ interval: `${H}ms`, 'signing-seed': key.seedFile });
    const running = await signedSidecar({ 'public-key': [key.publicKey, next.publicKey] });
    const [old] = await reloads.waitFor(SUBJECTS.policyReload, 1);
    await until(() => running.sidecar.receiver?.delivered?.revision === old?.payload.revision, 5000, 'the first set');
    await central.close();
    writeFileSync(path.join(dir, 'b.toml'), 'version = "1.0"\n[[rules]]\nid = "b1"\npriority = 1\nmatch = { resource = "tool" }\neffect = "deny"\n');
    central = await sentinel({ interval: `${H}ms`, 'signing-seed': next.seedFile });
    const signedByNext = await until(() => reloads.on(SUBJECTS.policyReload).find((e) => (e.payload.signature as { key: string }).key === next.publicKey), 5000, 'a reload signed by the new key');
    await until(() => running.sidecar.receiver?.delivered?.revision === signedByNext.payload.revision, 5000, 'the set signed by the new key');
    // Still trusted, the old key's older set cannot come back: one replay mark across keys.
    reloads.nc.publish(SUBJECTS.policyReload, JSON.stringify(old));
    await until(() => running.sidecar.receiver?.refused.replayed === 1, 5000, 'the replay refused');
    await running.close();
    // The old key removed: anything it signs is refused, however new.
    const rotated = await signedSidecar({ 'public-key': next.publicKey });
    const late = makeReload({ files: { 'late.yaml': policyYaml('z1') }, signer: key.signer });
    reloads.nc.publish(SUBJECTS.policyReload, JSON.stringify(late.message));
    await until(() => rotated.sidecar.receiver?.refused['wrong key'] === 1, 5000, 'the old key refused');
    expect(rotated.sidecar.receiver?.delivered?.revision).toBe(signedByNext.payload.revision);
  });

  it('never prints a seed given where a public key belongs, and refuses a seed file others may read (break 7)', async ({ root, server, key }) => {
    const { resolveConfig } = await import('../../src/config/resolve.js');
    const config = path.join(root, 'sentinel.toml');
    writeFileSync(config, `[trust]\nkeys = ["${key.seed}"]\n`);
    for (const input of [{ flags: { 'public-key': key.seed } }, { env: { SENTINEL_PUBLIC_KEY: key.seed } }, { flags: { config } }]) {
      let message = '';
      try {
        resolveConfig({ flags: {}, env: {}, cwd: root, ...input });
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/is an NKey seed \(the secret that signs\), not a public key/);
      expect(message).not.toContain(key.seed);
      expect(message).not.toContain(key.seed.slice(2, 20));
    }
    const exposed = path.join(root, 'exposed.nk');
    writeFileSync(exposed, key.seed, { mode: 0o644 });
    const r = await Daemon.run(['--signing-seed', exposed, '--servers', server.url, '--policies', root], {}, root);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('is readable by every user of this machine (mode 0644)');
    expect(r.stderr + r.stdout).not.toContain(key.seed);
  });

  it('makes a key, and tells its public key, with no other tool (keygen, pubkey)', async ({ root }) => {
    const file = path.join(root, 'made.nk');
    const made = await Daemon.run(['keygen', '--out', file]);
    expect(made.code).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const seed = readFileSync(file, 'utf8').trim();
    expect(made.stdout + made.stderr).not.toContain(seed);
    const { fromSeed } = await import('@nats-io/nkeys');
    expect(made.stdout.trim()).toBe(fromSeed(new TextEncoder().encode(seed)).getPublicKey());
    expect((await Daemon.run(['pubkey', file])).stdout.trim()).toBe(made.stdout.trim());
    // Without --out: nachos-sentinel.nk in the working directory.
    expect((await Daemon.run(['keygen'], {}, root)).code).toBe(0);
    expect(statSync(path.join(root, 'nachos-sentinel.nk')).mode & 0o777).toBe(0o600);
    expect(await Daemon.run(['keygen', '--out', file])).toMatchObject({ code: 2, stderr: expect.stringContaining('exists; a seed is never written over') });
    expect(lstatSync(file).isFile()).toBe(true);
  });
});

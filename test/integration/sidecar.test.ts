import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createAccount } from '@nats-io/nkeys';
import { describe, expect } from 'vitest';
import type { HealthStatusPayload } from '../../src/health/status-payload.js';
import { computeRevision } from '../../src/policy/revision.js';
import { signedBytes } from '../../src/policy/signature.js';
import { SUBJECTS } from '../../src/protocol/topics.js';
import type { BusListener } from '../helpers/bus-listener.js';
import { Daemon } from '../helpers/daemon.js';
import { test, type Flags } from '../helpers/fixtures.js';
import { packageVersion } from '../../src/cli/version.js';
import { signingKey } from '../helpers/signing.js';
import { importNachos, nachosAvailable, nachosSkipReason, NachosStyleReader } from '../helpers/nachos-reader.js';
import { policyYaml } from '../helpers/policy-files.js';
import { prng } from '../helpers/prng.js';
import { shellRevision } from '../helpers/revision.js';
import { quietFor, until } from '../helpers/until.js';

const H = 200;
const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

/**
 * A stand-in for Nachos' gateway: its HealthCheck on /health (200 healthy, 503 otherwise, with its own
 * version and uptime: a day, unlike any sidecar a test starts), and a reload endpoint.
 */
class GatewayStandIn {
  static readonly VERSION = '1.4.2';
  static readonly UPTIME = 86_400;
  failing: string[] = [];
  reloadStatus = 200;
  reloads = 0;
  plain500 = false;
  /** Answer nothing to a health request: the check must cut itself off. */
  hang = false;
  private constructor(readonly server: Server) {}

  static async start(): Promise<GatewayStandIn> {
    let self: GatewayStandIn | undefined;
    const server = createServer((req, res) => {
      const gw = self as GatewayStandIn;
      if (req.url === '/reload' && req.method === 'POST') {
        gw.reloads++;
        res.writeHead(gw.reloadStatus).end();
        return;
      }
      if (gw.hang) return;
      if (gw.plain500) {
        res.writeHead(500, { 'content-type': 'text/plain' }).end('oops');
        return;
      }
      const checks: Record<string, 'ok' | 'error'> = { database: 'ok', llm: 'ok' };
      for (const name of gw.failing) checks[name] = 'error';
      const status = gw.failing.length > 0 ? 'unhealthy' : 'healthy';
      res.writeHead(status === 'healthy' ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status, component: 'gateway', version: GatewayStandIn.VERSION, uptime: GatewayStandIn.UPTIME, checks }, null, 2));
    });
    self = new GatewayStandIn(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return self;
  }

  readonly port = (): number => (this.server.address() as AddressInfo).port;

  get url(): string {
    return `http://127.0.0.1:${this.port()}`;
  }

  close(): Promise<void> {
    // A request left hanging would hold the server open.
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** The files of a delivery directory as a reader finds them: name -> SHA-256 (through the links). */
function onDisk(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const name of readdirSync(dir).filter((n) => !n.startsWith('.'))) files[name] = sha256(readFileSync(path.join(dir, name)));
  return files;
}

/** Each reload's policy files: name -> SHA-256, as announced. */
function announcedSets(listener: BusListener): Record<string, string>[] {
  return listener.on(SUBJECTS.policyReload).map((e) => Object.fromEntries((e.payload.files as { path: string; sha256: string }[]).map((f) => [f.path, f.sha256])));
}

const it = test
  .extend('central', async ({ sentinel }) => async (flags: Flags = {}) => {
    const running = await sentinel({ interval: `${H}ms`, ...flags });
    await running.connected();
    return running;
  })
  .extend('gateway', async ({ defer }) => {
    const gw = await GatewayStandIn.start();
    defer(() => gw.close());
    return gw;
  })
  .extend('deliverDir', async ({ root }) => path.join(root, 'delivered'))
  .extend('status', async ({ listen }) => {
    const listener = await listen([]);
    return async (component?: string) => {
      const reply = await listener.nc.request(SUBJECTS.healthStatus, component ? JSON.stringify({ component }) : '', { timeout: 2000 });
      return reply.json<{ payload: HealthStatusPayload }>().payload;
    };
  });

describe('the sidecar: health for its neighbour', () => {
  it("reports the neighbour's own verdict: a 503 with a failing check is unhealthy with that check within an interval, and healthy again after", async ({
    central,
    sidecarOf,
    gateway,
    listen,
    status,
  }) => {
    await central({ require: 'gateway' });
    const beats = await listen([SUBJECTS.health]);
    await sidecarOf('gateway', { check: [`${gateway.url}/health`], interval: `${H}ms` });
    await until(async () => (await status('gateway')).components[0]?.status === 'healthy', 5000, 'the gateway healthy');
    const gatewayBeats = () => beats.on(SUBJECTS.health).filter((e) => e.source === 'gateway').map((e) => e.payload as { status: string; checks: Record<string, string>; details: Record<string, { message?: string }> });

    gateway.failing = ['llm'];
    const flippedAt = performance.now();
    const unhealthy = await until(() => gatewayBeats().find((b) => b.status === 'unhealthy'), 5000, 'an unhealthy heartbeat');
    expect(performance.now() - flippedAt).toBeLessThan(H + 1000);
    expect(unhealthy.checks).toMatchObject({ llm: 'error', database: 'ok', gateway: 'ok' });
    expect(unhealthy.details.llm?.message).toBe('reported by gateway');
    const view = await until(async () => {
      const v = await status('gateway');
      return v.components[0]?.status === 'unhealthy' ? v : undefined;
    }, 3000, 'the view to follow');
    expect(view.components[0]?.reason).toContain('llm');

    gateway.failing = [];
    await until(() => gatewayBeats().at(-1)?.status === 'healthy', 5000, 'healthy again');

    // Not a HealthCheck: the status code decides, and says so.
    gateway.plain500 = true;
    const plain = await until(() => gatewayBeats().find((b) => b.details.gateway?.message === 'HTTP 500, expected 200'), 5000, 'a plain 500');
    expect(plain.status).toBe('unhealthy');
    // Nobody listening: refused, and said so in the system's words.
    const port = gateway.port();
    await gateway.close();
    const refused = await until(() => gatewayBeats().find((b) => b.details.gateway?.message === `connect ECONNREFUSED 127.0.0.1:${port}`), 5000, 'a refused check');
    expect(refused.status).toBe('unhealthy');
  });

  it("names its checks: one without a name after its component, the next <component>-2, and `--check NAME=URL` NAME", async ({ sidecarOf, gateway, listen }) => {
    const beats = await listen([SUBJECTS.health]);
    await sidecarOf('gateway', { check: [`${gateway.url}/health`, `gw=${gateway.url}/health`, `tcp://127.0.0.1:${gateway.port()}`], interval: `${H}ms` });
    const running = await until(
      () => beats.on(SUBJECTS.health).find((e) => e.source === 'gateway' && e.payload.state === 'running'),
      5000,
      'a heartbeat with every check answered',
    );
    const checks = running.payload.checks as Record<string, string>;
    expect(checks).toMatchObject({ gateway: 'ok', gw: 'ok', 'gateway-2': 'ok', database: 'ok', llm: 'ok' });
    expect(Object.keys(checks).some((name) => /127_0_0_1/.test(name))).toBe(false);
  });

  it("carries the gateway's version and uptime, its own in details.sidecar, as far as the central sentinel's view", async ({ central, sidecarOf, gateway, listen, status }) => {
    await central({ require: 'gateway' });
    const beats = await listen([SUBJECTS.health]);
    await sidecarOf('gateway', { check: [`${gateway.url}/health`], interval: `${H}ms` });
    const beat = (
      await until(() => beats.on(SUBJECTS.health).find((e) => e.source === 'gateway' && e.payload.state === 'running'), 5000, 'a heartbeat with the check answered')
    ).payload as { version: string; uptime: number; details: Record<string, { message?: string; version?: string; uptime?: number }> };
    expect(beat).toMatchObject({ version: GatewayStandIn.VERSION, uptime: GatewayStandIn.UPTIME });
    expect(beat.details.sidecar).toMatchObject({ version: packageVersion() });
    expect(beat.details.sidecar?.uptime).toBeLessThan(60);
    expect(beat.details.sidecar?.message).toMatch(new RegExp(`^nachos-sentinel sidecar ${packageVersion().replace(/\./g, '\\.')}, up [\\d.]+ s$`));
    const view = await until(async () => {
      const v = await status('gateway');
      return v.components[0]?.instances[0]?.version === GatewayStandIn.VERSION ? v : undefined;
    }, 3000, "the gateway's version in the view");
    expect(view.components[0]?.instances[0]?.uptime).toBe(GatewayStandIn.UPTIME);
  });

  it('says a hanging endpoint was cut off by its timeout: "timeout after 2s"', async ({ sidecarOf, gateway, listen }) => {
    const beats = await listen([SUBJECTS.health]);
    await sidecarOf('gateway', { check: [`${gateway.url}/health`], interval: `${H}ms` });
    await until(() => beats.on(SUBJECTS.health).find((e) => e.source === 'gateway' && e.payload.status === 'healthy'), 5000, 'healthy');
    gateway.hang = true;
    const cut = await until(
      () => beats.on(SUBJECTS.health).find((e) => e.source === 'gateway' && (e.payload.details as Record<string, { message?: string }>).gateway?.message === 'timeout after 2s'),
      6000,
      'the timeout in a heartbeat',
    );
    expect(cut.payload.status).toBe('unhealthy');
    // Nothing of the gateway answered: the version is the sidecar's own again.
    expect(cut.payload.version).toBe(packageVersion());
  });

  it('vouches for nothing without a check: its component is unknown, not healthy, the system unknown, and the probe exits 1', async ({
    server,
    deliverDir,
    central,
    sidecarOf,
    status,
  }) => {
    await central({ require: 'gateway' });
    const running = await sidecarOf('gateway', { 'deliver-to': deliverDir, interval: `${H}ms` });
    await until(() => running.sidecar.receiver?.delivered, 5000, 'the delivery');
    // Past the central's first interval, and its delivery in the heartbeat: everything the sidecar can say, said.
    const view = await until(
      async () => {
        const v = await status();
        const gw = v.components.find((c) => c.name === 'gateway');
        return !v.reason.startsWith('within the first interval') && gw?.instances[0]?.policyRevision ? v : undefined;
      },
      5000,
      'the delivered revision in the view',
    );
    expect(view.components.find((c) => c.name === 'gateway')).toMatchObject({
      role: 'required',
      status: 'unknown',
      reason: '1 of 1 unknown (its sidecar has no check)',
      instances: [{ status: 'unknown', reported: 'unknown', checks: { policy_delivery: 'ok' } }],
    });
    expect(view).toMatchObject({ status: 'unknown', reason: 'required gateway is unknown (its sidecar has no check)' });
    const mine = await Daemon.run(['--once', '--component', 'gateway', '--servers', server.url]);
    expect(mine.code, mine.stdout + mine.stderr).toBe(1);
    expect(mine.stdout).toMatch(/^component gateway: unknown\n/);
    const overall = await Daemon.run(['--once', '--servers', server.url]);
    expect(overall.code, overall.stdout + overall.stderr).toBe(1);
    expect(overall.stdout).toMatch(/^nachos: unknown \(required gateway is unknown \(its sidecar has no check\)\)\n/);
  });

  it('answers no status or policy.current request, and speaks for no one but its neighbour', async ({ startServer, sidecarOf, gateway, listen }) => {
    const server = await startServer();
    const running = await sidecarOf('gateway', { servers: server.url, check: [`${gateway.url}/health`], interval: `${H}ms` });
    await running.connected();
    const listener = await listen([SUBJECTS.health], server.url);
    await listener.waitFor(SUBJECTS.health, 2, 5000);
    for (const subject of [SUBJECTS.healthStatus, SUBJECTS.policyCurrent, '$SRV.PING.nachos-sentinel']) {
      await expect(listener.nc.request(subject, '', { timeout: 500 }), subject).rejects.toThrow();
    }
    // Its own identity, for standard tooling.
    const ping = await listener.nc.request('$SRV.PING.nachos-sentinel-sidecar', '', { timeout: 1000 });
    expect(ping.json<{ name: string; metadata: Record<string, string> }>()).toMatchObject({ name: 'nachos-sentinel-sidecar', metadata: { component: 'gateway' } });
    // Every heartbeat on the bus is the neighbour's.
    expect(new Set(listener.on(SUBJECTS.health).map((e) => e.source))).toEqual(new Set(['gateway']));
    expect(running.lines.some((l) => String(l.msg).includes('announced'))).toBe(false);
  });
});

describe('the sidecar: verified policies delivered', () => {
  it('delivers whole sets only, in the ConfigMap layout, through a 1,000-edit burst, to a reader that reads the way Nachos does', async ({
    dir,
    deliverDir,
    central,
    sidecarOf,
    listen,
    status,
  }) => {
    const names = Array.from({ length: 8 }, (_, i) => `p${i}.yaml`);
    rmSync(path.join(dir, 'a.toml'));
    for (const name of names) writeFileSync(path.join(dir, name), policyYaml(`${name}-0`));
    const reloads = await listen([SUBJECTS.policyReload]);
    await central();
    const running = await sidecarOf('gateway', { 'deliver-to': deliverDir, interval: `${H}ms` });
    const first = await until(() => running.sidecar.receiver?.delivered, 5000, 'the first delivery');
    expect(first.revision).toBe(reloads.on(SUBJECTS.policyReload)[0]?.payload.revision);
    // The layout: a version directory, `..data` to it, one link per file.
    const data = readlinkSync(path.join(deliverDir, '..data'));
    expect(data).toMatch(/^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d+\.\w+$/);
    for (const name of names) expect(readlinkSync(path.join(deliverDir, name))).toBe(`..data/${name}`);

    const reader = new NachosStyleReader(deliverDir).start();
    try {
      const random = prng(Number(process.env.SIDECAR_SEED ?? 20261202));
      const version = new Map(names.map((n) => [n, 0]));
      for (let edit = 0; edit < 1000; edit++) {
        const name = names[Math.floor(random() * names.length)] as string;
        const file = path.join(dir, name);
        const text = policyYaml(`${name}-${version.set(name, (version.get(name) ?? 0) + 1).get(name)}`);
        const op = random();
        if (op < 0.1 && readdirSync(dir).length > 2) rmSync(file, { force: true });
        else if (op < 0.6) {
          writeFileSync(`${file}.tmp`, text);
          renameSync(`${file}.tmp`, file);
        } else writeFileSync(file, text);
        const pause = random();
        if (pause < 0.03) await quietFor(60 + Math.floor(random() * 200));
        else if (pause < 0.2) await quietFor(Math.floor(random() * 5));
      }
      const final = shellRevision(dir);
      await until(() => running.sidecar.receiver?.delivered?.revision === final, 15_000, 'the final set delivered');
      const announced = announcedSets(reloads);
      await until(() => {
        const last = reader.loads.at(-1);
        return last && JSON.stringify(Object.fromEntries(last.files)) === JSON.stringify(onDisk(deliverDir)) && performance.now() - last.at > 150;
      }, 5000, 'the reader to load the final set');
      reader.close();

      // Every set the reader loaded is one the central sentinel announced, whole: nothing half, nothing mixed.
      // Like Nachos' loader, the reader lists the directory, then reads file by file: a file that left the set
      // between the two (its link removed by the next delivery) cannot be read, and is an error it goes on from,
      // as Nachos' is; the files it did read are still a whole set, the newer one.
      const keys = announced.map((s) => JSON.stringify(Object.fromEntries(Object.entries(s).sort())));
      expect(reader.loads.length).toBeGreaterThan(5);
      for (const load of reader.loads) {
        const key = JSON.stringify(Object.fromEntries([...load.files].sort()));
        const at = keys.flatMap((k, i) => (k === key ? [i] : []));
        expect(at.length, `a whole announced set: ${key}`).toBeGreaterThan(0);
        for (const error of load.errors) {
          expect(error.message, error.file).toMatch(/^Failed to load policy file: ENOENT/);
          expect(load.files.has(error.file), error.file).toBe(false);
          // It was in a set announced before the one read: it left the set while the reader read.
          expect(at.some((i) => announced.slice(0, i).some((s) => error.file in s)), error.file).toBe(true);
        }
      }
      // The bytes on disk hash to what was announced, and the heartbeat says the revision on disk.
      const lastAnnounced = reloads.on(SUBJECTS.policyReload).find((e) => e.payload.revision === final);
      expect(onDisk(deliverDir)).toEqual(Object.fromEntries((lastAnnounced?.payload.files as { path: string; sha256: string }[]).map((f) => [f.path, f.sha256])));
      expect(reloads.on(SUBJECTS.policyReload).length).toBeGreaterThan(10);
      // Convergence: the sidecar's container is on the revision in force.
      const view = await until(async () => {
        const v = await status('gateway');
        return v.components[0]?.instances[0]?.policyRevision === final ? v : undefined;
      }, 3000, 'convergence');
      expect(view.policy).toMatchObject({ revision: final, behind: [] });
      // Only the newest version is kept.
      expect(readdirSync(deliverDir).filter((n) => n.startsWith('..') && n !== '..data')).toHaveLength(1);
    } finally {
      reader.close();
    }
  }, 120_000);

  it('refuses unsigned, wrongly signed, tampered and replayed reloads, and malformed ones: the directory untouched, each counted', async ({
    root,
    dir,
    deliverDir,
    central,
    sidecarOf,
    listen,
  }) => {
    const { kp: key, seedFile: seed } = signingKey(root);
    const reloads = await listen([SUBJECTS.policyReload]);
    await central({ 'signing-seed': seed });
    const running = await sidecarOf('gateway', { 'deliver-to': deliverDir, 'public-key': key.getPublicKey(), interval: `${H}ms` });
    const [old] = await reloads.waitFor(SUBJECTS.policyReload, 1);
    await until(() => running.sidecar.receiver?.delivered?.revision === old?.payload.revision, 5000, 'the first delivery');
    writeFileSync(path.join(dir, 'b.toml'), 'version = "1.0"\n[[rules]]\nid = "b1"\npriority = 1\nmatch = { resource = "tool" }\neffect = "deny"\n');
    const [, current] = await reloads.waitFor(SUBJECTS.policyReload, 2);
    await until(() => running.sidecar.receiver?.delivered?.revision === current?.payload.revision, 5000, 'the second delivery');
    const before = onDisk(deliverDir);
    const data = readlinkSync(path.join(deliverDir, '..data'));

    const publish = (message: unknown) => reloads.nc.publish(SUBJECTS.policyReload, JSON.stringify(message));
    const envelope = structuredClone(current) as unknown as { payload: Record<string, unknown> & { files: { path: string; content: string; sha256: string; bytes: number }[] } };
    // A deny turned allow, the hashes and revision made to match: consistent, but not what was signed.
    const tampered = structuredClone(envelope);
    const b = tampered.payload.files.find((f) => f.path === 'b.toml') as { path: string; content: string; sha256: string; bytes: number };
    b.content = b.content.replace('deny', 'allow');
    b.sha256 = sha256(b.content);
    b.bytes = Buffer.byteLength(b.content);
    tampered.payload.revision = computeRevision(tampered.payload.files);
    tampered.payload.issuedAt = new Date().toISOString();
    publish(tampered);
    // Unsigned: the same, its signature dropped.
    const unsigned = structuredClone(tampered);
    delete unsigned.payload.signature;
    publish(unsigned);
    // Signed, by someone else.
    const other = createAccount();
    const forged = structuredClone(tampered);
    const signature = { alg: 'ed25519-nkey', key: other.getPublicKey(), sig: '' };
    forged.payload.signature = signature;
    signature.sig = Buffer.from(other.sign(signedBytes(forged as unknown as Parameters<typeof signedBytes>[0]))).toString('base64url');
    publish(forged);
    // Replayed: the first reload, signed for real, published again.
    publish(old);
    reloads.nc.publish(SUBJECTS.policyReload, 'not json at all');

    await until(() => (running.sidecar.receiver?.refusedCount ?? 0) >= 5, 5000, 'five refusals');
    expect(running.sidecar.receiver?.refused).toEqual({ 'bad signature': 1, unsigned: 1, 'wrong key': 1, replayed: 1, 'not json': 1 });
    expect(onDisk(deliverDir)).toEqual(before);
    expect(readlinkSync(path.join(deliverDir, '..data'))).toBe(data);
    expect(running.sidecar.receiver?.delivered?.revision).toBe(current?.payload.revision);
  });

  it('refuses, after its own restart, a signed set older than the one on disk', async ({ root, dir, deliverDir, central, sidecarOf, listen }) => {
    const { kp: key, seedFile: seed } = signingKey(root);
    const reloads = await listen([SUBJECTS.policyReload]);
    await central({ 'signing-seed': seed });
    const flags = { 'deliver-to': deliverDir, 'public-key': key.getPublicKey(), interval: `${H}ms` };
    const first = await sidecarOf('gateway', flags);
    const [old] = await reloads.waitFor(SUBJECTS.policyReload, 1);
    await until(() => first.sidecar.receiver?.delivered?.revision === old?.payload.revision, 5000, 'the first delivery');
    writeFileSync(path.join(dir, 'b.toml'), 'version = "1.0"\n[[rules]]\nid = "b1"\npriority = 1\nmatch = { resource = "tool" }\neffect = "deny"\n');
    const [, current] = await reloads.waitFor(SUBJECTS.policyReload, 2);
    await until(() => first.sidecar.receiver?.delivered?.revision === current?.payload.revision, 5000, 'the second delivery');
    await first.close();

    const second = await sidecarOf('gateway', flags);
    await second.connected();
    const before = onDisk(deliverDir);
    reloads.nc.publish(SUBJECTS.policyReload, JSON.stringify(old));
    await until(() => second.sidecar.receiver?.refused.replayed === 1, 5000, 'the replay refused');
    expect(onDisk(deliverDir)).toEqual(before);
    expect(second.sidecar.receiver?.delivered?.revision).toBe(current?.payload.revision);
  });

  it('refuses, unsigned, a set that would write outside its directory', async ({ deliverDir, central, sidecarOf, listen }) => {
    const reloads = await listen([SUBJECTS.policyReload]);
    await central();
    const running = await sidecarOf('gateway', { 'deliver-to': deliverDir, interval: `${H}ms` });
    const [first] = await reloads.waitFor(SUBJECTS.policyReload, 1);
    await until(() => running.sidecar.receiver?.delivered, 5000, 'the first delivery');
    const evil = structuredClone(first) as unknown as { payload: Record<string, unknown> & { files: { path: string; content: string; sha256: string; bytes: number; kind: string }[] } };
    const content = 'version: "1.0"\nrules: []\n';
    evil.payload.files = [{ path: '../escaped.yaml', kind: 'policy', content, sha256: sha256(content), bytes: content.length }];
    evil.payload.revision = computeRevision(evil.payload.files);
    reloads.nc.publish(SUBJECTS.policyReload, JSON.stringify(evil));
    await until(() => running.sidecar.receiver?.refused['unsafe name'] === 1, 5000, 'the refusal');
    expect(readdirSync(path.dirname(deliverDir))).not.toContain('escaped.yaml');
  });

  it('keeps what it delivered through its own restart and the central sentinel\'s absence, and catches up', async ({
    dir,
    deliverDir,
    central,
    sidecarOf,
    listen,
  }) => {
    const reloads = await listen([SUBJECTS.policyReload, SUBJECTS.health]);
    const centralOne = await central();
    const first = await sidecarOf('gateway', { 'deliver-to': deliverDir, interval: `${H}ms` });
    const rev1 = await until(() => first.sidecar.receiver?.delivered?.revision, 5000, 'the first delivery');
    await first.close();

    // Announced while the sidecar is away: the restarted sidecar keeps rev1 on disk, then asks and catches up.
    writeFileSync(path.join(dir, 'b.toml'), 'version = "1.0"\n[[rules]]\nid = "b1"\npriority = 1\nmatch = { resource = "tool" }\neffect = "allow"\n');
    const rev2 = (await until(() => reloads.on(SUBJECTS.policyReload).find((e) => e.payload.revision !== rev1), 5000, 'rev2 announced')).payload.revision;
    expect(onDisk(deliverDir)).toHaveProperty(['a.toml']);
    const second = await sidecarOf('gateway', { 'deliver-to': deliverDir, interval: `${H}ms` });
    expect(second.lines.find((l) => String(l.msg).startsWith('the delivery directory holds a verified set'))).toMatchObject({ revision: rev1 });
    await until(() => second.sidecar.receiver?.delivered?.revision === rev2, 5000, 'the catch-up');
    expect(onDisk(deliverDir)).toHaveProperty(['b.toml']);
    await second.close();

    // The central sentinel gone: a sidecar started now keeps rev2, and says so in its heartbeat.
    await centralOne.close();
    const onDiskBefore = onDisk(deliverDir);
    const third = await sidecarOf('gateway', { 'deliver-to': deliverDir, interval: `${H}ms` });
    await third.connected();
    await until(
      () => reloads.on(SUBJECTS.health).find((e) => e.source === 'gateway' && (e.payload.policy as { revision: string | null }).revision === rev2),
      5000,
      'a heartbeat with rev2',
    );
    await quietFor(3 * H);
    expect(onDisk(deliverDir)).toEqual(onDiskBefore);
    // The central sentinel back, with a change: delivered.
    rmSync(path.join(dir, 'b.toml'));
    await central();
    await until(() => third.sidecar.receiver?.delivered?.revision === rev1, 5000, 'the set after the return');
    expect(Object.keys(onDisk(deliverDir))).toEqual(['a.toml']);
  });

  it('tells the neighbour once per delivery (POST and command), and shows a failing reload in its health', async ({
    root,
    dir,
    deliverDir,
    central,
    sidecarOf,
    gateway,
    listen,
  }) => {
    const ran = path.join(root, 'ran.txt');
    writeFileSync(ran, '');
    const beats = await listen([SUBJECTS.health]);
    await central();
    const running = await sidecarOf('gateway', {
      'deliver-to': deliverDir,
      'reload-url': `${gateway.url}/reload`,
      'reload-command': `echo "$NACHOS_POLICY_REVISION" >> ${ran}`,
      interval: `${H}ms`,
    });
    const rev1 = await until(() => running.sidecar.receiver?.delivered?.revision, 5000, 'the first delivery');
    writeFileSync(path.join(dir, 'b.toml'), 'version = "1.0"\n[[rules]]\nid = "b1"\npriority = 1\nmatch = { resource = "tool" }\neffect = "allow"\n');
    const rev2 = await until(() => (running.sidecar.receiver?.delivered?.revision !== rev1 ? running.sidecar.receiver?.delivered?.revision : undefined), 5000, 'rev2');
    await until(() => gateway.reloads === 2 && readFileSync(ran, 'utf8').split('\n').filter(Boolean).length === 2, 5000, 'two notices');
    await quietFor(500);
    expect(gateway.reloads).toBe(2);
    expect(readFileSync(ran, 'utf8')).toBe(`${rev1}\n${rev2}\n`);
    expect(running.sidecar.notifier.counts).toEqual({ posts: 2, commands: 2 });

    // The neighbour refuses: retried, and said in the heartbeat (degraded) until it accepts.
    gateway.reloadStatus = 500;
    writeFileSync(path.join(dir, 'c.toml'), 'version = "1.0"\n[[rules]]\nid = "c1"\npriority = 1\nmatch = { resource = "tool" }\neffect = "allow"\n');
    const sick = await until(
      () =>
        beats
          .on(SUBJECTS.health)
          .map((e) => e.payload as { status: string; checks: Record<string, string>; details: Record<string, { message?: string }> })
          .find((b) => b.checks.policy_reload === 'error'),
      5000,
      'the failing reload in the heartbeat',
    );
    // No check of the neighbour: its status stays unknown (degraded would vouch for it); the check says what fails.
    expect(sick.status).toBe('unknown');
    expect(sick.details.policy_reload?.message).toMatch(/answered HTTP 500/);
    await until(() => gateway.reloads >= 4, 5000, 'retries');
    gateway.reloadStatus = 200;
    await until(() => running.sidecar.notifier.failure === undefined, 10_000, 'the reload accepted');
  });

  it('says in its health when a set cannot be written, keeps trying, and delivers once it can', async ({ deliverDir, central, sidecarOf }) => {
    // A file where the directory should be: nothing can be written under it.
    writeFileSync(deliverDir, 'in the way');
    await central();
    const running = await sidecarOf('gateway', { 'deliver-to': deliverDir, interval: `${H}ms` });
    await until(() => running.sidecar.receiver?.failure, 5000, 'the failure');
    // No check of the neighbour: unknown, with the failing delivery in its checks.
    expect(running.sidecar.heartbeat.payload()).toMatchObject({ status: 'unknown', checks: { policy_delivery: 'error' }, policy: { revision: null } });
    expect(running.sidecar.heartbeat.payload().details.policy_delivery?.message).toMatch(/cannot use the delivery directory .*delivered: EEXIST/);
    rmSync(deliverDir);
    await until(() => running.sidecar.receiver?.delivered, 5000, 'the retry');
    expect(running.sidecar.heartbeat.payload()).toMatchObject({ status: 'unknown', checks: { policy_delivery: 'ok' } });
  });

  it('shows a failing reload command in its health', async ({ deliverDir, central, sidecarOf }) => {
    await central();
    const running = await sidecarOf('gateway', { 'deliver-to': deliverDir, 'reload-command': 'exit 3', interval: `${H}ms` });
    await until(() => running.sidecar.notifier.failure, 5000, 'the failure');
    expect(running.sidecar.notifier.failure).toBe('the reload command exited 3');
    expect(running.sidecar.heartbeat.payload()).toMatchObject({ status: 'unknown', checks: { policy_reload: 'error', policy_delivery: 'ok' } });
  });
});

describe('the sidecar executable', () => {
  it('runs from the built bundle, and refuses to start without a component or anything to do', async ({ server, deliverDir, central, listen }) => {
    await central();
    const beats = await listen([SUBJECTS.health]);
    const noName = await Daemon.run(['sidecar', '--servers', server.url, '--deliver-to', deliverDir]);
    expect(noName).toMatchObject({ code: 2, stderr: expect.stringContaining('--component: a sidecar needs the name of the component') });
    const idle = await Daemon.run(['sidecar', '--servers', server.url, '--component', 'gateway']);
    expect(idle).toMatchObject({ code: 2, stderr: expect.stringContaining('nothing to do') });
    const help = await Daemon.run(['sidecar', '--help']);
    for (const flag of ['--check', '--deliver-to', '--public-key', '--reload-url', '--reload-header', '--reload-command', '--take-over', '--deployment', '--consumer']) expect(help.stdout).toContain(flag);
    // Its own help, with its own defaults: none of the central sentinel's flags (policies, roster, signing).
    for (const flag of ['--policies', '--require', '--signing-seed', '--quiet-window', '--max-instances']) expect(help.stdout).not.toContain(flag);
    expect(help.stdout).toMatch(/--http VALUE .*default off\)/);
    const { version } = JSON.parse(readFileSync(path.resolve('package.json'), 'utf8')) as { version: string };
    expect(await Daemon.run(['sidecar', '--version'])).toMatchObject({ code: 0, stdout: `${version}\n` });

    const d = Daemon.start(['sidecar', '--servers', server.url, '--component', 'gateway', '--deliver-to', deliverDir, '--interval', `${H}ms`]);
    try {
      await d.waitForLog((l) => l.msg === 'delivered the policy set');
      await until(() => beats.on(SUBJECTS.health).find((e) => e.source === 'gateway'), 5000, 'its heartbeat');
      expect(readdirSync(deliverDir)).toContain('a.toml');
      expect((await d.stop()).code).toBe(0);
      expect(beats.on(SUBJECTS.health).filter((e) => e.source === 'gateway').at(-1)?.payload.state).toBe('stopping');
    } finally {
      d.kill();
    }
  });
});

describe.skipIf(!nachosAvailable)(`the sidecar beside an unmodified Nachos gateway (its own health server and PolicyLoader)${nachosAvailable ? '' : `: skipped, ${nachosSkipReason}`}`, () => {
  it('reports what its health server says, and its PolicyLoader loads each delivered set whole', async ({ dir, deliverDir, central, sidecarOf, status, defer }) => {
    type HealthModule = {
      createHealthServer(o: { port: number; deps: { checkBus: () => boolean } }): { server: Server; start(): Promise<void>; stop(): Promise<void> };
      performHealthCheck(): { version: string };
    };
    type LoaderModule = {
      PolicyLoader: new (c: { policiesPath: string; enableHotReload: boolean; onReload: (policies: { rules: { id: string }[] }[]) => void }) => {
        load(): [{ rules: { id: string }[] }[], unknown[]];
        startWatching(): void;
        destroy(): void;
      };
    };
    const health = await importNachos<HealthModule>('packages/core/gateway/src/health.ts');
    const { PolicyLoader } = await importNachos<LoaderModule>('packages/core/gateway/src/salsa/policy/loader.ts');
    // Nachos logs every step on the console: kept quiet here.
    const quiet = { log: console.log, warn: console.warn, error: console.error };
    console.log = console.warn = console.error = () => undefined;
    defer(() => Object.assign(console, quiet));

    let busOk = true;
    const port = await new Promise<number>((resolve) => {
      const probe = createServer();
      probe.listen(0, '127.0.0.1', () => {
        const p = (probe.address() as AddressInfo).port;
        probe.close(() => resolve(p));
      });
    });
    const nachosHealth = health.createHealthServer({ port, deps: { checkBus: () => busOk } });
    await nachosHealth.start();
    defer(() => nachosHealth.stop());

    rmSync(path.join(dir, 'a.toml'));
    writeFileSync(path.join(dir, 'gateway.yaml'), policyYaml('g1', 'g2'));
    await central({ require: 'gateway' });
    mkdirSync(deliverDir);
    const loads: string[][] = [];
    const loader = new PolicyLoader({ policiesPath: deliverDir, enableHotReload: true, onReload: (policies) => loads.push(policies.flatMap((p) => p.rules.map((r) => r.id)).sort()) });
    loader.startWatching();
    defer(() => loader.destroy());
    await sidecarOf('gateway', { 'deliver-to': deliverDir, check: [`http://localhost:${port}/health`], interval: `${H}ms` });

    await until(() => loads.at(-1)?.join(',') === 'g1,g2', 5000, 'Nachos to load the first set');
    const healthy = await until(async () => {
      const v = await status('gateway');
      return v.components[0]?.status === 'healthy' ? v : undefined;
    }, 5000, 'healthy');
    // The version is the one Nachos' health server says, not the sidecar's.
    expect(healthy.components[0]?.instances[0]?.version).toBe(health.performHealthCheck().version);
    // A change of content only: Nachos reloads it (its watcher hears the file's own name).
    writeFileSync(path.join(dir, 'gateway.yaml'), policyYaml('g1', 'g3'));
    await until(() => loads.at(-1)?.join(',') === 'g1,g3', 5000, 'Nachos to load the changed set');
    // A file added, then one removed.
    writeFileSync(path.join(dir, 'extra.yaml'), policyYaml('e1'));
    await until(() => loads.at(-1)?.join(',') === 'e1,g1,g3', 5000, 'the added file');
    rmSync(path.join(dir, 'gateway.yaml'));
    await until(() => loads.at(-1)?.join(',') === 'e1', 5000, 'the removed file');

    busOk = false;
    const view = await until(async () => {
      const v = await status('gateway');
      return v.components[0]?.status === 'unhealthy' ? v : undefined;
    }, 5000, 'Nachos unhealthy');
    expect(view.components[0]?.instances[0]?.checks).toMatchObject({ bus: 'error', database: 'ok' });
  });

  it('loads every rule of the shipped policies/ in Nachos; a TOML file beside them is warned about, delivered, and shown as not enforced', async ({ dir, deliverDir, central, sidecarOf, status, listen, defer }) => {
    type LoaderModule = { PolicyLoader: new (c: { policiesPath: string; enableHotReload: boolean }) => { load(): [{ rules: { id: string }[] }[], { file: string }[]] } };
    const { PolicyLoader } = await importNachos<LoaderModule>('packages/core/gateway/src/salsa/policy/loader.ts');
    const quiet = { log: console.log, warn: console.warn, error: console.error };
    const nachosLoad = (where: string) => {
      console.log = console.warn = console.error = () => undefined;
      try {
        return new PolicyLoader({ policiesPath: where, enableHotReload: false }).load();
      } finally {
        Object.assign(console, quiet);
      }
    };
    // The shipped example, as an operator starts from it, and one rule written in TOML beside it.
    rmSync(path.join(dir, 'a.toml'));
    const shipped = path.resolve(import.meta.dirname, '../../policies');
    for (const name of readdirSync(shipped)) writeFileSync(path.join(dir, name), readFileSync(path.join(shipped, name)));
    writeFileSync(path.join(dir, 'extra.toml'), 'version = "1.0"\n[[rules]]\nid = "extra-deny"\npriority = 1\nmatch = { resource = "tool" }\neffect = "deny"\n');
    const reloads = await listen([SUBJECTS.policyReload]);
    await central({ require: 'gateway' });
    const [reload] = await reloads.waitFor(SUBJECTS.policyReload, 1);
    expect((reload?.payload.warnings as { file: string; message: string }[]).find((w) => w.file === 'extra.toml')?.message).toBe(
      "Nachos' loader reads only *.yaml and *.yml: the rule in extra.toml is not in force in a Nachos gateway",
    );
    const running = await sidecarOf('gateway', { 'deliver-to': deliverDir, interval: `${H}ms` });
    await until(() => running.sidecar.receiver?.delivered, 5000, 'the delivery');
    expect(readdirSync(deliverDir).filter((n) => !n.startsWith('.')).sort()).toEqual(['extra.toml', 'permissive.yaml', 'standard.yaml', 'strict.yaml']);
    // Nachos' own loader, reading what the sidecar delivered: every shipped rule, none of the TOML file.
    const [policies, errors] = nachosLoad(deliverDir);
    expect(errors).toEqual([]);
    const ids = policies.flatMap((p) => p.rules.map((r) => r.id));
    expect(ids).toHaveLength(22);
    expect(ids).not.toContain('extra-deny');
    // Its heartbeat says so, and the central's convergence view shows it: delivered, not enforced.
    expect(running.sidecar.heartbeat.payload().policy).toEqual({ revision: reload?.payload.revision, unread: ['extra.toml'], deliveredAt: expect.any(String) });
    const view = await until(async () => {
      const v = await status('gateway');
      return v.policy.notEnforced.length > 0 ? v : undefined;
    }, 5000, 'not enforced in the view');
    expect(view.policy).toMatchObject({ converged: false, notEnforced: [{ component: 'gateway', files: ['extra.toml'] }] });
    expect(view.policy.summary).toContain('delivered, not enforced: extra.toml (gateway/');
    defer(() => undefined);
  });
});

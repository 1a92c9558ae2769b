/**
 * Rollout and history benchmark: each figure next to its floor or its peer, in one run.
 *
 *   npm run bench:rollout          (ROLLBACKS=100, SETS=10000 by default)
 *
 *   NODE_BIN=... runs the daemons and the CLI with another Node; for everything on Node 24:
 *   PATH=$(dirname $(.ci/node24)):$PATH npx tsx bench/rollout.ts
 *
 * (r) a rollback asked on the bus -> the answer, and -> the bytes in a sidecar's directory, as
 *     deployed: the compiled central sentinel signing, the compiled sidecar with its key and a check
 *     of a stand-in gateway; p50 and p99 over ROLLBACKS, interleaved with its peer, a change of the
 *     policy directory on the same path (target: the answer within 100 ms);
 * (s) the history over SETS recorded sets (one file of three changing each time): the time
 *     `nachos-sentinel history` takes to list (a fresh process, as an operator runs it) beside a bare
 *     Node process reading the same 20 entry files, and the disk per set beside the bytes of the
 *     file that changed;
 * (j) a JetStream append per set (its entry, and the file that changed, stored once) beside a bare
 *     JetStream publish of the same bytes, interleaved.
 */
import { spawnSync } from 'node:child_process';
import { acceptedEntry } from '../test/helpers/history-entries.js';
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { JetStreamHistoryStore } from '../src/history/jetstream-store.js';
import { LocalHistoryStore } from '../src/history/local-store.js';
import { computeRevision } from '../src/policy/revision.js';
import { buildSnapshot, type Snapshot } from '../src/policy/snapshot.js';
import { SUBJECTS } from '../src/protocol/topics.js';
import { BIN, Daemon } from '../test/helpers/daemon.js';
import { NatsServer } from '../test/helpers/nats-server.js';
import { atomicWrite, policyYaml } from '../test/helpers/policy-files.js';
import { signingKey } from '../test/helpers/signing.js';
import { tempDir } from '../test/helpers/temp-dir.js';
import { until } from '../test/helpers/until.js';

const ROLLBACKS = Number(process.env.ROLLBACKS ?? 100);
const SETS = Number(process.env.SETS ?? 10_000);
const APPENDS = Number(process.env.APPENDS ?? 300);
const NODE = process.env.NODE_BIN ?? process.execPath;
/** Past the sidecar's delivery spacing (250 ms), so each rollback is its own delivery. */
const GAP_MS = 350;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(q * xs.length) - 1)] as number;
const median = (xs: number[]) => quantile(xs, 0.5);
const ms = (x: number) => `${x.toFixed(1)} ms`;
const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

function hashOf(file: string): string | undefined {
  try {
    return sha256(readFileSync(file));
  } catch {
    return undefined;
  }
}

async function waitFor(file: string, want: string, t0: number): Promise<number> {
  for (;;) {
    if (hashOf(file) === want) return performance.now() - t0;
    if (performance.now() - t0 > 10_000) throw new Error(`${file} did not change within 10 s`);
    await sleep(1);
  }
}

/** (r) Rollback -> answer -> bytes in the sidecar's directory, beside a change of the directory. */
async function rollback(server: NatsServer) {
  const { dir: root, cleanup } = tempDir('bench-rollout-');
  const source = path.join(root, 'policies');
  const delivered = path.join(root, 'delivered');
  mkdirSync(source);
  const key = signingKey(root);
  const gateway = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"healthy","component":"gateway","checks":{}}'));
  await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
  const check = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}/health`;
  const texts = [policyYaml('one'), policyYaml('two')];
  writeFileSync(path.join(source, 'a.yaml'), texts[0] as string);
  const executable = { bin: BIN, node: NODE };
  const central = Daemon.start(['--servers', server.url, '--policies', source, '--signing-seed', key.seedFile, '--log-level', 'warn', '--http', 'off', '--state-dir', path.join(root, 'state')], {}, undefined, undefined, executable);
  const sidecar = Daemon.start(['sidecar', '--servers', server.url, '--component', 'gateway', '--deliver-to', delivered, '--public-key', key.publicKey, '--check', check, '--log-level', 'warn'], {}, undefined, undefined, executable);
  const nc = await connect({ servers: server.url });
  try {
    const file = path.join(delivered, 'a.yaml');
    await until(() => hashOf(file) === sha256(texts[0] as string), 10_000, 'the first delivery');
    atomicWrite(path.join(source, 'a.yaml'), texts[1] as string);
    await until(() => hashOf(file) === sha256(texts[1] as string), 10_000, 'the second set');
    await sleep(GAP_MS);
    const answered: number[] = [];
    const onDisk: number[] = [];
    const changed: number[] = [];
    // The set "one", by revision (entries past the newest 100 are not kept; the revision's newest entry is).
    const first = computeRevision([{ path: 'a.yaml', sha256: sha256(texts[0] as string) }]).slice(0, 12);
    for (let i = 0; i < ROLLBACKS; i++) {
      // A rollback to "one" (the directory holds "two")...
      const t0 = performance.now();
      const request = { id: randomUUID(), timestamp: new Date().toISOString(), source: 'bench', type: 'system.policy.rollback', payload: { revision: first } };
      const reply = await nc.request(SUBJECTS.policyRollback, JSON.stringify(request), { timeout: 5000 });
      answered.push(performance.now() - t0);
      if (reply.headers?.get('Nats-Service-Error')) throw new Error(`rollback refused: ${reply.headers.get('Nats-Service-Error') ?? ''}`);
      onDisk.push(await waitFor(file, sha256(texts[0] as string), t0));
      await sleep(GAP_MS);
      // ...then its peer: the directory changes (to "two" and back), which ends the rollback, on the same path.
      const next = i % 2 === 0 ? `${texts[1] as string}# ${i}\n` : (texts[1] as string);
      const t1 = performance.now();
      atomicWrite(path.join(source, 'a.yaml'), next);
      changed.push(await waitFor(file, sha256(next), t1));
      await sleep(GAP_MS);
    }
    console.log(
      `(r) rollback asked on the bus, ${ROLLBACKS} times (central signing, sidecar with --public-key and --check):\n` +
        `    answered:                         p50 ${ms(median(answered))}, p99 ${ms(quantile(answered, 0.99))}  (target: within 100 ms: ${quantile(answered, 0.99) <= 100 ? 'met' : 'MISSED'} at p99)\n` +
        `    bytes in the sidecar's directory: p50 ${ms(median(onDisk))}, p99 ${ms(quantile(onDisk, 0.99))}\n` +
        `    peer, a change of the directory:  p50 ${ms(median(changed))}, p99 ${ms(quantile(changed, 0.99))} (write -> same directory; its quiet window included)`,
    );
  } finally {
    await nc.close();
    await sidecar.stop();
    await central.stop();
    await new Promise((resolve) => gateway.close(resolve));
    cleanup();
  }
}

/** SETS sets of three files, one changing each time: what the history records. */
function* sets(count: number): Generator<{ snapshot: Snapshot; changedBytes: number }> {
  const fixed = [policyYaml('fixed-1', 'fixed-2'), policyYaml('fixed-3')];
  for (let i = 0; i < count; i++) {
    const changing = policyYaml(`rule-${i}`, `other-${i}`);
    const built = buildSnapshot(
      [
        { path: 'a.yaml', kind: 'policy', content: Buffer.from(fixed[0] as string) },
        { path: 'b.yaml', kind: 'policy', content: Buffer.from(fixed[1] as string) },
        { path: 'c.yaml', kind: 'policy', content: Buffer.from(changing) },
      ],
      [],
      { allowEmpty: false },
    );
    if (!built.ok) throw new Error('invalid bench set');
    yield { snapshot: built.snapshot, changedBytes: Buffer.byteLength(changing) };
  }
}

function entryFor(snapshot: Snapshot, previous: Snapshot | undefined, i: number) {
  return acceptedEntry(snapshot, previous, { by: 'sentinel/bench', key: `accepted:${snapshot.revision}:${i}`, signer: 'UBENCHKEYBENCHKEYBENCHKEYBENCHKEYBENCHKEYBENCHKEYBENCHKEY' });
}

/** What the files take on disk (whole blocks), and their bytes. */
function diskBytes(dir: string): { blocks: number; bytes: number } {
  let blocks = 0;
  let bytes = 0;
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const s = statSync(path.join(dir, name));
    if (!s.isFile()) continue;
    blocks += s.blocks * 512;
    bytes += s.size;
  }
  return { blocks, bytes };
}

/** (s) The history over SETS sets: listing it, and what it takes on disk. */
async function history() {
  const { dir: root, cleanup } = tempDir('bench-history-');
  const state = path.join(root, 'state');
  try {
    const store = await LocalHistoryStore.open({ dir: state, keep: SETS });
    let previous: Snapshot | undefined;
    let changed = 0;
    const appends: number[] = [];
    let i = 0;
    for (const { snapshot, changedBytes } of sets(SETS)) {
      const { entry, contents } = entryFor(snapshot, previous, i);
      const t0 = performance.now();
      await store.append(entry, contents);
      appends.push(performance.now() - t0);
      changed += i === 0 ? snapshot.files.reduce((n, f) => n + f.bytes, 0) : changedBytes;
      previous = snapshot;
      i++;
    }
    await store.close();
    const entries = readdirSync(path.join(state, 'entries')).sort().slice(-20);
    const floorScript = path.join(root, 'floor.mjs');
    writeFileSync(floorScript, `import { readdirSync, readFileSync } from 'node:fs';\nconst d = ${JSON.stringify(path.join(state, 'entries'))};\nfor (const f of readdirSync(d).sort().slice(-20)) JSON.parse(readFileSync(d + '/' + f, 'utf8'));\n`);
    const listing: number[] = [];
    const floor: number[] = [];
    for (let k = 0; k < 9; k++) {
      let t0 = performance.now();
      const r = spawnSync(NODE, [BIN, 'history', '--state-dir', state], { encoding: 'utf8' });
      listing.push(performance.now() - t0);
      if (r.status !== 0 || !r.stdout.includes(`#${SETS} `)) throw new Error(`history failed: ${r.stderr}`);
      t0 = performance.now();
      spawnSync(NODE, [floorScript]);
      floor.push(performance.now() - t0);
    }
    const disk = diskBytes(state);
    console.log(
      `(s) the history over ${SETS} recorded sets (3 files, one changing each time; the newest ${entries.length} listed):\n` +
        `    append (local, fsync'd):                 p50 ${ms(median(appends))}, p99 ${ms(quantile(appends, 0.99))}\n` +
        `    \`nachos-sentinel history\` (a process):  median ${ms(median(listing))}  beside a bare Node process reading the same 20 entries: ${ms(median(floor))} (${(median(listing) / median(floor)).toFixed(2)}x)\n` +
        `    disk: ${(disk.blocks / SETS / 1024).toFixed(2)} KiB per set on disk, ${(disk.bytes / SETS / 1024).toFixed(2)} KiB of it written (${(disk.blocks / 1024 / 1024).toFixed(1)} MiB in all), ` +
        `beside ${(changed / SETS / 1024).toFixed(2)} KiB of changed file bytes per set (${(disk.bytes / changed).toFixed(1)}x written: the entry; ${(disk.blocks / changed).toFixed(1)}x on disk: a block for the entry and one for the file)`,
    );
  } finally {
    cleanup();
  }
}

/** (j) A JetStream append per set, beside a bare JetStream publish of the same bytes. */
async function jetstreamAppend() {
  const server = await NatsServer.start({ jetstream: true });
  const nc = await connect({ servers: server.url });
  try {
    const store = new JetStreamHistoryStore({ connection: async () => nc, stream: 'BENCH_HISTORY', deployment: 'bench', keep: APPENDS + 10 });
    const js = jetstream(nc);
    const jsm = await (await import('@nats-io/jetstream')).jetstreamManager(nc);
    await jsm.streams.add({ name: 'BENCH_BARE', subjects: ['bench.bare.>'] });
    const ours: number[] = [];
    const bare: number[] = [];
    let previous: Snapshot | undefined;
    let i = 0;
    for (const { snapshot } of sets(APPENDS)) {
      const { entry, contents } = entryFor(snapshot, previous, i);
      // The same bytes, published bare: the entry, and the file that changed (the others are stored already).
      const bytes = [Buffer.from(JSON.stringify({ ...entry, n: i + 1, schemaVersion: 1 })), ...(i === 0 ? [...contents.values()] : [contents.get(snapshot.files[2]?.sha256 as string) as Buffer])];
      if (i % 2 === 0) {
        let t0 = performance.now();
        await store.append(entry, contents);
        ours.push(performance.now() - t0);
        t0 = performance.now();
        for (const b of bytes) await js.publish(`bench.bare.${i}`, b);
        bare.push(performance.now() - t0);
      } else {
        let t0 = performance.now();
        for (const b of bytes) await js.publish(`bench.bare.${i}`, b);
        bare.push(performance.now() - t0);
        t0 = performance.now();
        await store.append(entry, contents);
        ours.push(performance.now() - t0);
      }
      previous = snapshot;
      i++;
    }
    // The first appends make the stream and read it: the steady state is what a change costs.
    const steady = ours.slice(5);
    const steadyBare = bare.slice(5);
    console.log(
      `(j) JetStream append per set (${APPENDS}, interleaved; the first 5 left out): p50 ${ms(median(steady))}, p99 ${ms(quantile(steady, 0.99))}\n` +
        `    beside a bare JetStream publish of the same bytes:      p50 ${ms(median(steadyBare))}, p99 ${ms(quantile(steadyBare, 0.99))} (${(median(steady) / median(steadyBare)).toFixed(2)}x: ` +
        'each entry published with Nats-Expected-Last-Subject-Sequence on its slot)',
    );
  } finally {
    await nc.close();
    await server.stop();
  }
}

const version = spawnSync(NODE, ['--version'], { encoding: 'utf8' }).stdout.trim();
console.log(`nachos-sentinel rollout benchmark · Node ${version} · ${new Date().toISOString()}`);
const server = await NatsServer.start();
try {
  await rollback(server);
} finally {
  await server.stop();
}
await history();
await jetstreamAppend();

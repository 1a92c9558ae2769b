/**
 * Sidecar benchmark: each figure next to its floor, in one run.
 *
 *   npm run bench:sidecar          (CHANGES=500 for more samples)
 *
 * (g) end to end: a policy file written on the central side (temp file + rename)
 *     -> the central sentinel (compiled, default settings) -> the bus -> the
 *     sidecar (compiled) -> the new bytes readable in its delivery directory;
 *     target p50 <= the quiet window + 15 ms (Kubernetes' own ConfigMap
 *     propagation takes up to a minute or more);
 *     signed (--signing-seed, --public-key) beside unsigned, each pair on a bus
 *     of its own, changes interleaved: target signed within 3 ms of unsigned;
 * (h) the sidecar as deployed (an HTTP --check against a stand-in gateway,
 *     --public-key, signed sets delivered), next to a bare Node process holding
 *     one NATS connection (the floor): RSS after deliveries (target <= 1.25x),
 *     idle CPU at the default 5 s interval (target < 0.5% of a core), and start
 *     to first heartbeat on the bus (target < 300 ms; the floor: start to its
 *     first message);
 * (i) into Nachos' own PolicyLoader (NACHOS_REPO; skipped, saying why, without
 *     it): a source write -> onReload with the new rules, beside the floor of the
 *     file written straight into its directory; and a burst of 20 changes.
 *
 * `npx tsx bench/sidecar.ts latency` (or cost, nachos) runs one part;
 * NODE_BIN=... runs the sidecar of (h) on another Node.
 */
import { DEFAULTS } from './defaults.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { SUBJECTS } from '../src/protocol/topics.js';
import { BIN, Daemon } from '../test/helpers/daemon.js';
import { NatsServer } from '../test/helpers/nats-server.js';
import { atomicWrite, policyYaml } from '../test/helpers/policy-files.js';
import { signingKey } from '../test/helpers/signing.js';
import { importNachos, nachosAvailable, nachosSkipReason } from '../test/helpers/nachos-reader.js';
import { tempDir } from '../test/helpers/temp-dir.js';
import { DELIVERY_SPACING } from '../src/deliver/policy-receiver.js';
import { until } from '../test/helpers/until.js';

const CHANGES = Number(process.env.CHANGES ?? 200);
/** The Node that runs the sidecar and the floor (NODE_BIN=... to measure another, e.g. Node 24). */
const NODE = process.env.NODE_BIN ?? process.execPath;
/** Between changes: past the quiet window and the sidecar's delivery spacing, so each change is its own delivery. */
const GAP_MS = 300;
const QUIET_WINDOW_MS = DEFAULTS.quietWindowMs;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(q * xs.length) - 1)] as number;
const median = (xs: number[]) => quantile(xs, 0.5);
const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');
/** Every process a part starts: stopped when the benchmark ends, however it ends (a part that throws leaves none running). */
const started: { stop(): unknown }[] = [];
const own = <T extends { stop(): unknown }>(p: T): T => (started.push(p), p);

function rssMb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
}

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Reads a file's SHA-256 through its links; undefined while it is not there. */
function hashOf(file: string): string | undefined {
  try {
    return sha256(readFileSync(file));
  } catch {
    return undefined;
  }
}

/** A central sentinel and a sidecar on a bus of their own, signed or not, as deployed. */
async function startPair(root: string, name: string, signed: boolean) {
  const server = await NatsServer.start();
  const source = path.join(root, `${name}-policies`);
  const delivered = path.join(root, `${name}-delivered`);
  mkdirSync(source);
  writeFileSync(path.join(source, 'a.yaml'), policyYaml('a0'));
  const key = signed ? signingKey(root, `${name}.nk`) : undefined;
  const central = own(Daemon.start(['--servers', server.url, '--policies', source, '--log-level', 'warn', '--http', 'off', ...(key ? ['--signing-seed', key.seedFile] : [])]));
  const sidecar = own(Daemon.start(['sidecar', '--servers', server.url, '--component', 'bench', '--deliver-to', delivered, '--log-level', 'warn', ...(key ? ['--public-key', key.publicKey] : [])]));
  // When each announcement was heard on the bus: the path splits there (write -> announce -> disk).
  const listener = await connect({ servers: server.url });
  const heard: number[] = [];
  listener.subscribe(SUBJECTS.policyReload, { callback: () => void heard.push(performance.now()) });
  await listener.flush();
  await until(() => hashOf(path.join(delivered, 'a.yaml')) === sha256(policyYaml('a0')), 10_000, `the first delivery (${name})`);
  return {
    name,
    source,
    delivered,
    heard,
    stop: async () => {
      await listener.close();
      await sidecar.stop();
      await central.stop();
      await server.stop();
    },
  };
}

/** One change written at the source, until its bytes are in the sidecar's directory: [total, write -> announce]. */
async function oneChange(pair: Awaited<ReturnType<typeof startPair>>, i: number): Promise<[number, number]> {
  const text = policyYaml('a0', `a${i}`);
  const want = sha256(text);
  const t0 = performance.now();
  const before = pair.heard.length;
  atomicWrite(path.join(pair.source, 'a.yaml'), text);
  for (;;) {
    if (hashOf(path.join(pair.delivered, 'a.yaml')) === want) break;
    if (performance.now() - t0 > 10_000) throw new Error(`change ${i} not delivered within 10 s (${pair.name})`);
    await sleep(1);
  }
  const total = performance.now() - t0;
  const announced = (pair.heard[before] ?? Number.NaN) - t0;
  return [total, announced];
}

/**
 * (g) A source write to the bytes in the sidecar's directory, signed (--signing-seed on the central,
 * --public-key on the sidecar) and unsigned, each pair on its own bus, changes interleaved.
 */
async function endToEnd() {
  const { dir: root, cleanup } = tempDir('bench-sidecar-');
  const pairs = [await startPair(root, 'unsigned', false), await startPair(root, 'signed', true)];
  try {
    const samples = new Map(pairs.map((p) => [p.name, { total: [] as number[], announce: [] as number[] }]));
    for (let i = 1; i <= CHANGES; i++) {
      for (const pair of i % 2 ? pairs : [...pairs].reverse()) {
        const [total, announce] = await oneChange(pair, i);
        samples.get(pair.name)?.total.push(total);
        samples.get(pair.name)?.announce.push(announce);
        await sleep(GAP_MS);
      }
    }
    const line = (name: string) => {
      const { total, announce } = samples.get(name) as { total: number[]; announce: number[] };
      const a = median(announce.filter(Number.isFinite));
      return `    ${name.padEnd(9)} p50 ${median(total).toFixed(1).padStart(5)} ms (write -> announce ${a.toFixed(1)}, announce -> disk ${(median(total) - a).toFixed(1)}), p99 ${quantile(total, 0.99).toFixed(1)} ms`;
    };
    const unsigned = median(samples.get('unsigned')?.total ?? []);
    const signed = median(samples.get('signed')?.total ?? []);
    console.log(
      `(g) source write -> bytes in the sidecar's directory, ${CHANGES} changes each, interleaved (Node ${nodeVersion()}):\n${line('unsigned')}\n${line('signed')}\n` +
        `    signed - unsigned: ${(signed - unsigned).toFixed(1)} ms (target <= 3 ms: ${verdict(signed - unsigned <= 3)}); unsigned p50 <= quiet window (${QUIET_WINDOW_MS} ms) + 15 ms: ${verdict(unsigned <= QUIET_WINDOW_MS + 15)}`,
    );
  } finally {
    for (const pair of pairs) await pair.stop();
    cleanup();
  }
}

type NachosLoader = new (c: { policiesPath: string; enableHotReload: boolean; onReload: (policies: { rules: { id: string }[] }[]) => void }) => {
  startWatching(): void;
  destroy(): void;
};

/**
 * (i) Into Nachos' own PolicyLoader (compiled from NACHOS_REPO): a source write -> the central
 * (signed) -> the sidecar -> Nachos' onReload with the new rules, beside the floor of the same file
 * written straight into a directory another PolicyLoader watches; then a burst of changes, each path.
 */
async function intoNachos() {
  if (!nachosAvailable) {
    console.log(`(i) source write -> Nachos' PolicyLoader: skipped, ${nachosSkipReason}`);
    return;
  }
  const { PolicyLoader } = await importNachos<{ PolicyLoader: NachosLoader }>('packages/core/gateway/src/salsa/policy/loader.ts');
  const { dir: root, cleanup } = tempDir('bench-nachos-');
  const pair = await startPair(root, 'nachos', true);
  const straight = path.join(root, 'straight');
  mkdirSync(straight);
  writeFileSync(path.join(straight, 'a.yaml'), policyYaml('a0'));
  // Nachos logs every step on the console: kept quiet while it runs.
  const quiet = { log: console.log, warn: console.warn, error: console.error };
  const say = quiet.log;
  console.log = console.warn = console.error = () => undefined;
  const loads = { sidecar: [] as string[], straight: [] as string[] };
  const loaders = (['sidecar', 'straight'] as const).map((who) => {
    const loader = new PolicyLoader({
      policiesPath: who === 'sidecar' ? pair.delivered : straight,
      enableHotReload: true,
      onReload: (policies) => loads[who].push(policies.flatMap((p) => p.rules.map((r) => r.id)).sort().join(',')),
    });
    loader.startWatching();
    return loader;
  });
  const into = { sidecar: path.join(pair.source, 'a.yaml'), straight: path.join(straight, 'a.yaml') };
  const loaded = async (who: 'sidecar' | 'straight', ids: string, since: number) => {
    const t0 = performance.now();
    while (!loads[who].slice(since).includes(ids)) {
      if (performance.now() - t0 > 10_000) throw new Error(`Nachos (${who}) did not load ${ids} within 10 s`);
      await sleep(1);
    }
  };
  try {
    const samples = { sidecar: [] as number[], straight: [] as number[] };
    const n = Math.min(CHANGES, 60);
    for (let i = 1; i <= n; i++) {
      for (const who of i % 2 ? (['sidecar', 'straight'] as const) : (['straight', 'sidecar'] as const)) {
        const ids = ['a0', `a${i}`].sort().join(',');
        const since = loads[who].length;
        const t0 = performance.now();
        atomicWrite(into[who], policyYaml('a0', `a${i}`));
        await loaded(who, ids, since);
        samples[who].push(performance.now() - t0);
        await sleep(GAP_MS);
      }
    }
    // A burst: BURST changes 20 ms apart; from the last write to Nachos holding the last set, and how many reloads Nachos ran.
    const BURST = 20;
    const burst: Record<'sidecar' | 'straight', { lastToLoaded: number; reloads: number }> = { sidecar: { lastToLoaded: 0, reloads: 0 }, straight: { lastToLoaded: 0, reloads: 0 } };
    for (const who of ['sidecar', 'straight'] as const) {
      await sleep(1000);
      const since = loads[who].length;
      for (let k = 1; k <= BURST; k++) {
        atomicWrite(into[who], policyYaml('a0', `b${k}`));
        if (k < BURST) await sleep(20);
      }
      const t0 = performance.now();
      await loaded(who, ['a0', `b${BURST}`].sort().join(','), since);
      burst[who] = { lastToLoaded: performance.now() - t0, reloads: loads[who].length - since };
    }
    const sidecar = median(samples.sidecar);
    const floor = median(samples.straight);
    say(
      `(i) source write -> Nachos' PolicyLoader onReload (its own code, from NACHOS_REPO), ${n} changes each, interleaved (Node ${nodeVersion()}):\n` +
        `    through the central and the sidecar (signed)   p50 ${sidecar.toFixed(1).padStart(6)} ms, p99 ${quantile(samples.sidecar, 0.99).toFixed(1)} ms\n` +
        `    floor: written straight into its directory      p50 ${floor.toFixed(1).padStart(6)} ms, p99 ${quantile(samples.straight, 0.99).toFixed(1)} ms   (difference ${(sidecar - floor).toFixed(1)} ms: the quiet window ${QUIET_WINDOW_MS} ms and the bus)\n` +
        `    a burst of ${BURST} changes 20 ms apart, from its last write to Nachos holding the last set: through the sidecar ${burst.sidecar.lastToLoaded.toFixed(0)} ms (${burst.sidecar.reloads} reloads in Nachos), ` +
        `straight ${burst.straight.lastToLoaded.toFixed(0)} ms (${burst.straight.reloads} reloads); deliveries are spaced ${DELIVERY_SPACING} ms apart`,
    );
  } finally {
    for (const loader of loaders) loader.destroy();
    Object.assign(console, quiet);
    await pair.stop();
    cleanup();
  }
}

/** A process, and when its first message reached the bus. */
async function startAndHear(server: NatsServer, command: string[], subject: string, source: string) {
  const nc = await connect({ servers: server.url });
  let heardAt: number | undefined;
  nc.subscribe(subject, {
    callback: (_e, m) => {
      if (heardAt === undefined && m.json<{ source?: string }>().source === source) heardAt = performance.now();
    },
  });
  await nc.flush();
  const t0 = performance.now();
  const child: ChildProcess = spawn(NODE, command, { stdio: 'ignore' });
  own({ stop: () => child.kill() });
  await until(() => heardAt !== undefined, 10_000, `the first message of ${source}`);
  await nc.close();
  return { child, startMs: (heardAt as number) - t0 };
}

/** A stand-in for the gateway's health endpoint: Nachos' HealthCheck JSON on GET /health, as its server answers. */
async function standInGateway(): Promise<{ url: string; close: () => void }> {
  const startedAt = Date.now();
  const server = createServer((_req, res) => {
    const body = JSON.stringify({ status: 'healthy', timestamp: new Date().toISOString(), component: 'gateway', version: '0.0.1', uptime: (Date.now() - startedAt) / 1000, checks: { bus: 'ok', database: 'ok' } });
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/health`, close: () => server.close() };
}

/**
 * (h) The sidecar as deployed (its HTTP check against a stand-in gateway, a public key, sets
 * delivered from a signed central): RSS after deliveries, idle CPU and start, next to a bare Node
 * process holding one NATS connection.
 */
async function cost(server: NatsServer) {
  const { dir: root, cleanup } = tempDir('bench-sidecar-cost-');
  const floorScript = path.join(root, 'floor.mjs');
  const client = path.resolve('node_modules/@nats-io/transport-node/lib/mod.js');
  // The floor: connect, say one thing (as the sidecar's first heartbeat), then sit holding the connection.
  writeFileSync(
    floorScript,
    `const { connect } = await import(${JSON.stringify(client)});\n` +
      `const nc = await connect({ servers: process.argv[2] });\n` +
      `nc.publish('bench.floor', JSON.stringify({ source: 'floor' }));\n` +
      `setInterval(() => nc.publish('bench.floor', JSON.stringify({ source: 'floor' })), 5000);\n`,
  );
  const gateway = await standInGateway();
  const key = signingKey(root);
  const source = path.join(root, 'policies');
  mkdirSync(source);
  writeFileSync(path.join(source, 'gateway.yaml'), policyYaml('g0'));
  const central = own(Daemon.start(['--servers', server.url, '--policies', source, '--signing-seed', key.seedFile, '--log-level', 'warn', '--http', 'off']));
  // Five of each, started in turn and kept: RSS and idle CPU are medians over the five.
  const rounds = 5;
  const starts = { sidecar: [] as number[], floor: [] as number[] };
  const pairs: { sidecar: ChildProcess; floor: ChildProcess; dir: string }[] = [];
  for (let i = 0; i < rounds; i++) {
    const dir = path.join(root, `d${i}`);
    const floor = await startAndHear(server, [floorScript, server.url], 'bench.floor', 'floor');
    const sidecar = await startAndHear(
      server,
      [BIN, 'sidecar', '--servers', server.url, '--component', `bench-${i}`, '--check', gateway.url, '--public-key', key.publicKey, '--deliver-to', dir, '--log-level', 'warn'],
      SUBJECTS.health,
      `bench-${i}`,
    );
    starts.floor.push(floor.startMs);
    starts.sidecar.push(sidecar.startMs);
    pairs.push({ sidecar: sidecar.child, floor: floor.child, dir });
  }
  const each = (f: (pid: number) => number) => ({
    sidecar: pairs.map((p) => f(p.sidecar.pid as number)),
    floor: pairs.map((p) => f(p.floor.pid as number)),
  });
  // Idle: let start-up garbage go, then measure 30 s of the default 5 s interval (its check runs at each).
  await sleep(5000);
  const cpu0 = each(cpuSeconds);
  const t0 = performance.now();
  await sleep(Number(process.env.IDLE_SECONDS ?? 30) * 1000);
  const wall = (performance.now() - t0) / 1000;
  const cpu1 = each(cpuSeconds);
  const cpu = {
    sidecar: median(cpu1.sidecar.map((c, i) => (c - (cpu0.sidecar[i] as number)) / wall)),
    floor: median(cpu1.floor.map((c, i) => (c - (cpu0.floor[i] as number)) / wall)),
  };
  // Deliveries: a signed set every 2 s, each verified and written by every sidecar, then RSS once they settle.
  const DELIVERIES = 10;
  for (let i = 1; i <= DELIVERIES; i++) {
    const text = policyYaml('g0', `g${i}`);
    atomicWrite(path.join(source, 'gateway.yaml'), text);
    for (const { dir } of pairs) await until(() => hashOf(path.join(dir, 'gateway.yaml')) === sha256(text), 10_000, `delivery ${i}`);
    await sleep(2000);
  }
  const rssAll = each(rssMb);
  const rss = { sidecar: median(rssAll.sidecar), floor: median(rssAll.floor) };
  for (const p of pairs) {
    p.sidecar.kill();
    p.floor.kill();
  }
  await central.stop();
  gateway.close();
  cleanup();
  const ratio = rss.sidecar / rss.floor;
  const start = median(starts.sidecar);
  console.log(
    `(h) the sidecar as deployed (--check against a stand-in gateway, --public-key, ${DELIVERIES} signed deliveries), against a bare Node process holding one NATS connection (Node ${nodeVersion()}; RSS and idle CPU: medians of ${rounds} of each, kept side by side; start: median of ${rounds}; idle over ${wall.toFixed(0)} s):\n` +
      `    RSS             sidecar ${rss.sidecar.toFixed(1)} MB   floor ${rss.floor.toFixed(1)} MB   (${ratio.toFixed(2)}x; target <= 1.25x: ${verdict(ratio <= 1.25)})\n` +
      `    idle CPU        sidecar ${(cpu.sidecar * 100).toFixed(2)}%   floor ${(cpu.floor * 100).toFixed(2)}% of a core   (target < 0.5%: ${verdict(cpu.sidecar < 0.005)})\n` +
      `    start -> first  sidecar ${start.toFixed(0)} ms (its heartbeat)   floor ${median(starts.floor).toFixed(0)} ms (its message)   (target < 300 ms: ${verdict(start < 300)})`,
  );
}

function nodeVersion(): string {
  return spawnSync(NODE, ['--version'], { encoding: 'utf8' }).stdout.trim();
}

async function main() {
  const which = new Set(process.argv.slice(2));
  const run = (name: string) => which.size === 0 || which.has(name);
  const server = await NatsServer.start();
  try {
    console.log('nachos-sentinel sidecar benchmark\n');
    if (run('latency')) await endToEnd();
    if (run('cost')) await cost(server);
    if (run('nachos')) await intoNachos();
  } finally {
    await Promise.all(started.map((p) => p.stop()));
    await server.stop();
  }
}

await main();

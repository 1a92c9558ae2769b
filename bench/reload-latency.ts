/**
 * Policy reload benchmark: the thing and its floor, side by side, in one run.
 *
 *   npm run bench            (builds, then runs this with default settings)
 *   CHANGES=500 npm run bench
 *
 * (a) floor: a file write -> chokidar's raw event -> one NATS round trip, in one process;
 * (b) end to end: an atomic write (temp file + rename) -> the daemon (the compiled
 *     executable, default settings) -> a subscriber receiving the reload;
 * (c) a Kubernetes ConfigMap-style `..data` swap -> the subscriber;
 * (d) the daemon's RSS while watching 1,000 policy files, beside a bare Node process
 *     holding a NATS connection and chokidar watching them (`npx tsx bench/reload-latency.ts rss` alone);
 * (e) validating and hashing a 1,000-file set, against only reading and hashing it.
 */
import { DEFAULTS } from './defaults.js';
import { mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { watch } from 'chokidar';
import { loadFiles } from '../src/policy/load.js';
import { buildSnapshot } from '../src/policy/snapshot.js';
import { SUBJECTS } from '../src/protocol/topics.js';
import { Daemon } from '../test/helpers/daemon.js';
import { NatsServer } from '../test/helpers/nats-server.js';
import { atomicWrite, policyText } from '../test/helpers/policy-files.js';
import { tempDir } from '../test/helpers/temp-dir.js';
import { until } from '../test/helpers/until.js';

const CHANGES = Number(process.env.CHANGES ?? 200);
/** Time between changes: longer than the quiet window, so each change is its own burst. */
const GAP_MS = 120;
const QUIET_WINDOW_MS = DEFAULTS.quietWindowMs;

interface Stats {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
  return { n: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted.at(-1) as number };
}

const ms = (x: number) => `${x.toFixed(1)} ms`;
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));

/** (a) write -> chokidar raw event -> NATS request/reply. */
async function floor(server: NatsServer): Promise<Stats> {
  const { dir, cleanup } = tempDir('bench-floor-');
  const responder = await connect({ servers: server.url });
  responder.subscribe('bench.echo', {
    callback: (_e, m) => {
      m.respond(m.data);
    },
  });
  await responder.flush();
  const nc = await connect({ servers: server.url });
  const file = path.join(dir, 'a.toml');
  writeFileSync(file, 'x = 0');
  const watcher = watch(dir, { depth: 0, ignoreInitial: true, atomic: false, followSymlinks: false });
  await new Promise<void>((r) => watcher.once('ready', () => r()));
  let pending: ((t: number) => void) | undefined;
  watcher.on('raw', () => {
    const done = pending;
    pending = undefined;
    if (done) void nc.request('bench.echo', 'x').then(() => done(performance.now()));
  });
  const samples: number[] = [];
  for (let i = 0; i < CHANGES; i++) {
    const received = new Promise<number>((r) => (pending = r));
    const t0 = performance.now();
    atomicWrite(file, `x = ${i + 1}`);
    samples.push((await received) - t0);
    await sleep(GAP_MS / 4);
  }
  await watcher.close();
  await nc.close();
  await responder.close();
  cleanup();
  return stats(samples);
}

/** Starts the daemon on `dir` and a subscriber that records when each revision arrives. */
async function daemonWithSubscriber(server: NatsServer, dir: string) {
  const arrivals = new Map<string, number>();
  const nc: NatsConnection = await connect({ servers: server.url });
  nc.subscribe(SUBJECTS.policyReload, {
    callback: (_e, m) => {
      const revision = m.json<{ payload: { revision: string } }>().payload.revision;
      if (!arrivals.has(revision)) arrivals.set(revision, performance.now());
    },
  });
  await nc.flush();
  const daemon = Daemon.start(['--servers', server.url, '--policies', dir, '--log-level', 'warn']);
  await until(() => arrivals.size > 0, 15_000, 'the startup announcement');
  return { arrivals, daemon, close: async () => (await daemon.stop(), await nc.close()) };
}

/** The revision the daemon will announce for `dir`, computed independently (sha256sum's format). */
function revisionOf(dir: string, names: string[]): string {
  const lines = [...names]
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    .map((n) => `${createHash('sha256').update(readFileSync(path.join(dir, n))).digest('hex')}  ${n}\n`);
  return createHash('sha256').update(lines.join('')).digest('hex');
}

/** (b) atomic write -> daemon -> subscriber. */
async function endToEnd(server: NatsServer): Promise<Stats> {
  const { dir, cleanup } = tempDir('bench-e2e-');
  const names = ['a.toml', 'b.toml', 'c.toml'];
  names.forEach((n, i) => writeFileSync(path.join(dir, n), policyText(`init-${i}`)));
  const run = await daemonWithSubscriber(server, dir);
  const samples: number[] = [];
  for (let i = 0; i < CHANGES; i++) {
    const name = names[i % names.length] as string;
    const t0 = performance.now();
    atomicWrite(path.join(dir, name), policyText(`${name}-${i}`));
    const revision = revisionOf(dir, names);
    const arrived = await until(() => run.arrivals.get(revision), 5000, `revision ${i}`, 1);
    samples.push(arrived - t0);
    await sleep(GAP_MS);
  }
  await run.close();
  cleanup();
  return stats(samples);
}

/** (c) ConfigMap-style swap of `..data` -> daemon -> subscriber. */
async function configMapSwap(server: NatsServer): Promise<Stats> {
  const { dir, cleanup } = tempDir('bench-k8s-');
  const version = (i: number) => {
    const v = path.join(dir, `..v${i}`);
    mkdirSync(v);
    writeFileSync(path.join(v, 'a.toml'), policyText(`k8s-${i}`));
    return `..v${i}`;
  };
  symlinkSync(version(0), path.join(dir, '..data'));
  symlinkSync('..data/a.toml', path.join(dir, 'a.toml'));
  const run = await daemonWithSubscriber(server, dir);
  const samples: number[] = [];
  const swaps = Math.max(100, Math.floor(CHANGES / 2));
  for (let i = 1; i <= swaps; i++) {
    const next = version(i);
    symlinkSync(next, path.join(dir, '..data_tmp'));
    const t0 = performance.now();
    renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    const revision = revisionOf(dir, ['a.toml']);
    const arrived = await until(() => run.arrivals.get(revision), 5000, `swap ${i}`, 1);
    samples.push(arrived - t0);
    rmSync(path.join(dir, `..v${i - 1}`), { recursive: true });
    await sleep(GAP_MS);
  }
  await run.close();
  cleanup();
  return stats(samples);
}

function writeThousand(dir: string): void {
  for (let i = 0; i < 1000; i++) writeFileSync(path.join(dir, `p${String(i).padStart(4, '0')}.toml`), policyText(`r${i}-a`, `r${i}-b`));
}

/**
 * (d) RSS of the daemon watching 1,000 files, after its first announcement, next to its floor: a
 * bare Node process holding a NATS connection and chokidar watching the same files (and an idle node).
 */
async function rss(server: NatsServer): Promise<{ daemonMb: number; floorMb: number; bareNodeMb: number }> {
  const { dir, cleanup } = tempDir('bench-rss-');
  const watched = path.join(dir, 'policies');
  mkdirSync(watched);
  writeThousand(watched);
  const readRss = (pid: number) => {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) / 1024;
  };
  const { spawn } = await import('node:child_process');
  const floorScript = path.join(dir, 'floor.mjs');
  writeFileSync(
    floorScript,
    `const { connect } = await import(${JSON.stringify(path.resolve('node_modules/@nats-io/transport-node/lib/mod.js'))});\n` +
      `const { watch } = await import(${JSON.stringify(path.resolve('node_modules/chokidar/index.js'))});\n` +
      `const nc = await connect({ servers: process.argv[2] });\n` +
      `const watcher = watch(process.argv[3], { ignoreInitial: true });\n` +
      `watcher.on('ready', () => console.log('ready'));\n`,
  );
  const samples = { daemon: [] as number[], floor: [] as number[] };
  for (let round = 0; round < 3; round++) {
    const floor = spawn(process.execPath, [floorScript, server.url, watched], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((r) => floor.stdout.once('data', r));
    const run = await daemonWithSubscriber(server, watched);
    // Past the daemon's start-up (src/cli/start-up-memory.ts: V8's defaults are back 5 s after the first announcement).
    await sleep(8000);
    samples.daemon.push(readRss(run.daemon.child.pid as number));
    samples.floor.push(readRss(floor.pid as number));
    await run.close();
    floor.kill();
  }
  const idle = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 5000)']);
  await sleep(500);
  const bareNodeMb = readRss(idle.pid as number);
  idle.kill();
  cleanup();
  return { daemonMb: stats(samples.daemon).p50, floorMb: stats(samples.floor).p50, bareNodeMb };
}

/** (e) read + parse + validate + hash 1,000 files, against read + hash only. */
async function validateThousand(): Promise<{ full: Stats; readHash: Stats }> {
  const { dir, cleanup } = tempDir('bench-validate-');
  writeThousand(dir);
  const full: number[] = [];
  const readHash: number[] = [];
  for (let i = 0; i < 15; i++) {
    let t0 = performance.now();
    const loaded = await loadFiles({ dir, extraFiles: [], maxFileBytes: 1 << 20 });
    const result = buildSnapshot(loaded.sources, loaded.problems, { allowEmpty: false });
    if (!result.ok) throw new Error('bench set should be valid');
    full.push(performance.now() - t0);

    t0 = performance.now();
    const names = (await import('node:fs')).readdirSync(dir);
    await Promise.all(names.map(async (n) => createHash('sha256').update(await readFile(path.join(dir, n))).digest('hex')));
    readHash.push(performance.now() - t0);
  }
  cleanup();
  return { full: stats(full), readHash: stats(readHash) };
}

async function main() {
  const server = await NatsServer.start();
  if (process.argv[2] === 'rss') {
    const r = await rss(server);
    console.log(`(d) RSS watching 1,000 files (Node ${process.version}): daemon ${r.daemonMb.toFixed(1)} MB, floor ${r.floorMb.toFixed(1)} MB (+${(r.daemonMb - r.floorMb).toFixed(1)} MB), idle node ${r.bareNodeMb.toFixed(1)} MB`);
    await server.stop();
    return;
  }
  try {
    console.log(`nachos-sentinel reload benchmark: ${CHANGES} changes, quiet window ${QUIET_WINDOW_MS} ms (default)\n`);
    const f = await floor(server);
    const e = await endToEnd(server);
    const k = await configMapSwap(server);
    const row = (name: string, s: Stats, target: string) =>
      console.log(
        `${name.padEnd(34)} n=${String(s.n).padEnd(4)} p50 ${ms(s.p50).padStart(9)} (${(s.p50 / f.p50).toFixed(1)}x floor)` +
          `  p99 ${ms(s.p99).padStart(9)} (${(s.p99 / f.p99).toFixed(1)}x floor)  max ${ms(s.max)}   ${target}`,
      );
    row('(a) floor: write->event->NATS RTT', f, '');
    row('(b) atomic write -> subscriber', e, `target p50 <= ${QUIET_WINDOW_MS + 10} ms, p99 <= ${QUIET_WINDOW_MS + 50} ms`);
    row('(c) ConfigMap ..data swap', k, 'target p50 <= 10 ms');
    const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
    console.log(
      `    ordinary writes: p50 ${verdict(e.p50 <= QUIET_WINDOW_MS + 10)}, p99 ${verdict(e.p99 <= QUIET_WINDOW_MS + 50)};` +
        ` swap p50 ${verdict(k.p50 <= 10)}`,
    );

    const r = await rss(server);
    console.log(
      `\n(d) RSS watching 1,000 files (Node ${process.version}, median of 3): daemon ${r.daemonMb.toFixed(1)} MB; floor (node + NATS client + chokidar on them) ${r.floorMb.toFixed(1)} MB ` +
        `(+${(r.daemonMb - r.floorMb).toFixed(1)} MB, ${(r.daemonMb / r.floorMb).toFixed(2)}x); idle node ${r.bareNodeMb.toFixed(1)} MB\n` +
        `    targets: <= 80 MB on Node 20: ${process.version.startsWith('v20.') ? verdict(r.daemonMb <= 80) : 'n/a'}; within 15 MB of the floor: ${verdict(r.daemonMb - r.floorMb <= 15)}`,
    );
    const v = await validateThousand();
    console.log(
      `(e) validate + hash 1,000 files: p50 ${ms(v.full.p50)}, against read + hash only: p50 ${ms(v.readHash.p50)} ` +
        `(${(v.full.p50 / v.readHash.p50).toFixed(1)}x)`,
    );
  } finally {
    await server.stop();
  }
}

await main();

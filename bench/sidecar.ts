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
 * (h) the sidecar's cost, next to a bare Node process holding one NATS
 *     connection (the floor): RSS once idle (target <= 1.25x), idle CPU at the
 *     default 5 s interval (target < 0.5% of a core), and start to first
 *     heartbeat on the bus (target < 300 ms; the floor: start to its first
 *     message).
 */
import { DEFAULTS } from './defaults.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { SUBJECTS } from '../src/protocol/topics.js';
import { BIN, Daemon } from '../test/helpers/daemon.js';
import { NatsServer } from '../test/helpers/nats-server.js';
import { atomicWrite, policyText } from '../test/helpers/policy-files.js';
import { tempDir } from '../test/helpers/temp-dir.js';
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

/** (g) A source write to the bytes in the sidecar's directory. */
async function endToEnd(server: NatsServer) {
  const { dir: root, cleanup } = tempDir('bench-sidecar-');
  const source = path.join(root, 'policies');
  const delivered = path.join(root, 'delivered');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(source);
  writeFileSync(path.join(source, 'a.toml'), policyText('a0'));
  const central = Daemon.start(['--servers', server.url, '--policies', source, '--log-level', 'warn', '--http', 'off']);
  const sidecar = Daemon.start(['sidecar', '--servers', server.url, '--component', 'bench', '--deliver-to', delivered, '--log-level', 'warn']);
  try {
    await until(() => hashOf(path.join(delivered, 'a.toml')) === sha256(policyText('a0')), 10_000, 'the first delivery');
    const samples: number[] = [];
    for (let i = 1; i <= CHANGES; i++) {
      const text = policyText(`a${i}`);
      const want = sha256(text);
      const t0 = performance.now();
      atomicWrite(path.join(source, 'a.toml'), text);
      for (;;) {
        if (hashOf(path.join(delivered, 'a.toml')) === want) break;
        if (performance.now() - t0 > 10_000) throw new Error(`change ${i} not delivered within 10 s`);
        await sleep(1);
      }
      samples.push(performance.now() - t0);
      await sleep(GAP_MS);
    }
    const p50 = median(samples);
    console.log(
      `(g) source write -> bytes in the sidecar's directory, ${samples.length} changes: p50 ${p50.toFixed(1)} ms, p99 ${quantile(samples, 0.99).toFixed(1)} ms, max ${Math.max(...samples).toFixed(1)} ms\n` +
        `    target: p50 <= quiet window (${QUIET_WINDOW_MS} ms) + 15 ms: ${verdict(p50 <= QUIET_WINDOW_MS + 15)}`,
    );
  } finally {
    await sidecar.stop();
    await central.stop();
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
  await until(() => heardAt !== undefined, 10_000, `the first message of ${source}`);
  await nc.close();
  return { child, startMs: (heardAt as number) - t0 };
}

/** (h) The sidecar's RSS, idle CPU and start, next to a bare Node process holding one NATS connection. */
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
  const rounds = 5;
  const starts = { sidecar: [] as number[], floor: [] as number[] };
  let last: { sidecar: ChildProcess; floor: ChildProcess } | undefined;
  for (let i = 0; i < rounds; i++) {
    last?.sidecar.kill();
    last?.floor.kill();
    const floor = await startAndHear(server, [floorScript, server.url], 'bench.floor', 'floor');
    const sidecar = await startAndHear(
      server,
      [BIN, 'sidecar', '--servers', server.url, '--component', `bench-${i}`, '--deliver-to', path.join(root, `d${i}`), '--log-level', 'warn'],
      SUBJECTS.health,
      `bench-${i}`,
    );
    starts.floor.push(floor.startMs);
    starts.sidecar.push(sidecar.startMs);
    last = { sidecar: sidecar.child, floor: floor.child };
  }
  const { sidecar, floor } = last as { sidecar: ChildProcess; floor: ChildProcess };
  // Idle: let start-up garbage go, then measure 30 s of the default 5 s interval.
  await sleep(5000);
  const rss = { sidecar: rssMb(sidecar.pid as number), floor: rssMb(floor.pid as number) };
  const cpu0 = { sidecar: cpuSeconds(sidecar.pid as number), floor: cpuSeconds(floor.pid as number) };
  const t0 = performance.now();
  await sleep(Number(process.env.IDLE_SECONDS ?? 30) * 1000);
  const wall = (performance.now() - t0) / 1000;
  const cpu = { sidecar: (cpuSeconds(sidecar.pid as number) - cpu0.sidecar) / wall, floor: (cpuSeconds(floor.pid as number) - cpu0.floor) / wall };
  sidecar.kill();
  floor.kill();
  cleanup();
  const ratio = rss.sidecar / rss.floor;
  const start = median(starts.sidecar);
  console.log(
    `(h) the sidecar beside one container, against a bare Node process holding one NATS connection (Node ${nodeVersion()}; median of ${rounds} starts; idle over ${wall.toFixed(0)} s):\n` +
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
    if (run('latency')) await endToEnd(server);
    if (run('cost')) await cost(server);
  } finally {
    await server.stop();
  }
}

await main();

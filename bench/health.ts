/**
 * Health benchmark: each figure next to its floor or peer, in one run.
 *
 *   npm run bench:health
 *
 * (a) probe cost: wall time and peak RSS of `--once --self` and `--once` against
 *     bare `node -e 0`, and against a plain probe that imports the whole NATS client;
 * (b) ingest: heartbeats per second taken in by the aggregator (the compiled
 *     daemon) against a bare subscriber that only parses JSON, same publisher
 *     (median of three floods each, interleaved);
 * (c) CPU and RSS of the daemon tracking 10,000 instances beating every second;
 * (d) failure detection: from a publisher's last heartbeat to the stale
 *     transition, over 100 publishers that stop at random times;
 * (e) false stale alarms under ±30% jitter and 1% loss, 10 simulated minutes
 *     (the aggregator on a fake clock);
 * (f) the cost of one heartbeat and of one sweep with N instances of ONE
 *     component (opaque ids, as a flood sends them), N = 100 to 10,000: flat,
 *     where it once grew with N (every heartbeat and every silence scanned them all);
 *     beside the floor of any table of N (a Map lookup and re-insert per heartbeat).
 *
 * `npx tsx bench/health.ts flat` (or probe, ingest, load, detection, alarms) runs one part.
 */
import { DEFAULTS } from './defaults.js';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { HealthAggregator, STALE_AFTER_INTERVALS, STALE_MARGIN, type Transition } from '../src/health/aggregator.js';
import { SUBJECTS } from '../src/protocol/topics.js';
import { Daemon, BIN } from '../test/helpers/daemon.js';
import { FakeClock } from '../test/helpers/fake-clock.js';
import { prng } from '../test/helpers/prng.js';
import { NatsServer, freePort } from '../test/helpers/nats-server.js';
import { tempDir } from '../test/helpers/temp-dir.js';
import { until } from '../test/helpers/until.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(q * xs.length) - 1)] as number;
const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
const TIME = '/usr/bin/time';

/** The raw protocol probe: what `--once` does over the bus, with nothing but node:net (the floor of (a)). */
const RAW_PROBE = `import { connect } from 'node:net';
const url = new URL(process.argv[2]);
const socket = connect({ host: url.hostname, port: Number(url.port) });
let buffer = '';
let sent = false;
socket.setEncoding('utf8');
socket.on('data', (chunk) => {
  buffer += chunk;
  if (!sent && buffer.includes('\\r\\n')) {
    sent = true;
    buffer = buffer.slice(buffer.indexOf('\\r\\n') + 2);
    const body = JSON.stringify({ id: 'raw', timestamp: new Date().toISOString(), source: 'raw', type: 'system.health.status', payload: {} });
    socket.write('CONNECT {"verbose":false,"pedantic":false,"headers":false,"protocol":1}\\r\\nSUB _INBOX.raw 1\\r\\nPUB ${SUBJECTS.healthStatus} _INBOX.raw ' + Buffer.byteLength(body) + '\\r\\n' + body + '\\r\\n');
  }
  const at = buffer.indexOf('MSG ');
  const eol = at < 0 ? -1 : buffer.indexOf('\\r\\n', at);
  if (eol < 0) return;
  const size = Number(buffer.slice(at, eol).split(' ').at(-1));
  const data = Buffer.from(buffer.slice(eol + 2));
  if (data.byteLength < size) return;
  process.exitCode = JSON.parse(data.subarray(0, size).toString()).payload.status === 'unhealthy' ? 1 : 0;
  socket.end();
});
`;

/** The raw GET: what `--once --self` does, with nothing but node:net (the floor of `--self`). */
const RAW_GET = `import { connect } from 'node:net';
const [host, port] = process.argv[2].split(':');
const socket = connect({ host, port: Number(port) });
let answer = '';
socket.setEncoding('utf8');
socket.once('connect', () => socket.end('GET /readyz HTTP/1.0\\r\\nHost: ' + process.argv[2] + '\\r\\nConnection: close\\r\\n\\r\\n'));
socket.on('data', (chunk) => (answer += chunk));
socket.once('end', () => (process.exitCode = / 200 /.test(answer.slice(0, answer.indexOf('\\r\\n'))) ? 0 : 1));
`;

function envelope(payload: object): string {
  return JSON.stringify({ id: 'b', timestamp: new Date().toISOString(), source: 'bench', type: 'system.health', payload });
}

/** Starts the compiled daemon with an empty-but-allowed policy set; resolves once it answers. */
async function startDaemon(server: NatsServer, args: string[]) {
  const { dir, cleanup } = tempDir('bench-health-');
  const http = `127.0.0.1:${await freePort()}`;
  const daemon = Daemon.start(['--servers', server.url, '--policies', dir, '--allow-empty', '--log-level', 'warn', '--http', http, ...args]);
  const nc = await connect({ servers: server.url });
  await until(() => nc.request(SUBJECTS.healthStatus, '', { timeout: 500 }).then(() => true, () => false), 10_000, 'the daemon');
  const status = async () => (await nc.request(SUBJECTS.healthStatus, '', { timeout: 5000 })).json<{ payload: { ingest: { received: number; evicted: number }; tracked: number } }>().payload;
  return { daemon, http, nc, status, close: async () => (await daemon.stop(), await nc.close(), cleanup()) };
}

/** (a) Wall time (median of interleaved runs) and peak RSS (median, via GNU time) of each command. */
async function probeCost(server: NatsServer) {
  const running = await startDaemon(server, ['--interval', '1s']);
  const { dir, cleanup } = tempDir('bench-peer-');
  const peer = path.join(dir, 'plain-probe.mjs');
  const client = path.resolve('node_modules/@nats-io/transport-node/lib/mod.js');
  writeFileSync(
    peer,
    `const { connect } = await import(${JSON.stringify(client)});\n` +
      `const nc = await connect({ servers: process.argv[2] });\n` +
      `const m = await nc.request('${SUBJECTS.healthStatus}', '{}', { timeout: 2000 });\n` +
      `process.exitCode = m.json().payload.status === 'unhealthy' ? 1 : 0;\nawait nc.close();\n`,
  );
  // The floor of a probe over the bus: a bare script that speaks the NATS protocol itself (TCP connect,
  // INFO, CONNECT, SUB, PUB with a reply inbox, the MSG read and its status judged).
  const raw = path.join(dir, 'raw-probe.mjs');
  writeFileSync(raw, RAW_PROBE);
  // The floor of --self: a bare script that sends the same GET over node:net.
  const rawGet = path.join(dir, 'raw-get.mjs');
  writeFileSync(rawGet, RAW_GET);
  const commands: Record<string, string[]> = {
    'node -e 0': ['-e', '0'],
    'raw GET /readyz (floor of --self)': [rawGet, running.http],
    'raw NATS protocol probe (floor)': [raw, server.url],
    '--once --self': [BIN, '--once', '--self', '--http', running.http],
    '--once (over the bus)': [BIN, '--once', '--servers', server.url],
    'plain probe, whole NATS client': [peer, server.url],
  };
  const wall: Record<string, number[]> = {};
  const rss: Record<string, number[]> = {};
  for (let i = 0; i < 30; i++) {
    for (const [name, args] of Object.entries(commands)) {
      const t0 = performance.now();
      const r = spawnSync(process.execPath, args, { stdio: 'ignore' });
      (wall[name] ??= []).push(performance.now() - t0);
      if (i === 0 && r.status !== 0 && r.status !== 1) throw new Error(`${name} failed: ${r.status}`);
      if (existsSync(TIME) && i < 10) {
        const t = spawnSync(TIME, ['-f', '%M', process.execPath, ...args], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
        (rss[name] ??= []).push(Number(t.stderr.trim().split('\n').pop()) / 1024);
      }
    }
  }
  await running.close();
  cleanup();
  const floor = { wall: median(wall['node -e 0'] ?? []), rss: median(rss['node -e 0'] ?? [Number.NaN]) };
  const rawWall = median(wall['raw NATS protocol probe (floor)'] ?? []);
  console.log(`(a) probe cost, median of 30 interleaved runs (RSS: median of 10, GNU time), Node ${process.version}; ratios to node -e 0, and [to the raw protocol floor]`);
  for (const name of Object.keys(commands)) {
    const w = median(wall[name] ?? []);
    const m = rss[name] ? median(rss[name]) : Number.NaN;
    console.log(
      `    ${name.padEnd(34)} ${w.toFixed(1).padStart(6)} ms (${(w / floor.wall).toFixed(2)}x) [${(w / rawWall).toFixed(2)}x]   RSS ${m.toFixed(1).padStart(5)} MB (${(m / floor.rss).toFixed(2)}x)`,
    );
  }
  // Without GNU time there is no RSS figure, and so no RSS verdict either.
  const rssVerdict = (name: string, target: number) => (rss[name] ? verdict(median(rss[name]) / floor.rss <= target) : `not measured (no ${TIME})`);
  const self = median(wall['--once --self'] ?? []) / floor.wall;
  const selfToGet = median(wall['--once --self'] ?? []) / median(wall['raw GET /readyz (floor of --self)'] ?? []);
  const bus = median(wall['--once (over the bus)'] ?? []) / rawWall;
  console.log(
    `    --once --self is ${selfToGet.toFixed(2)}x the raw GET\n` +
    `    targets: --once --self <= 1.15x node -e 0 (wall ${verdict(self <= 1.15)}, RSS ${rssVerdict('--once --self', 1.15)}); ` +
      `--once <= 1.3x the raw protocol floor (wall ${verdict(bus <= 1.3)}), RSS <= 1.5x node -e 0 (${rssVerdict('--once (over the bus)', 1.5)})`,
  );
}

/** Publishes `count` heartbeats over `instances` instances on `subject` as fast as the client can, flushing now and then. */
async function flood(nc: NatsConnection, count: number, instances: number, subject: string = SUBJECTS.health, firstSeq = 0) {
  for (let i = 0; i < count; i++) {
    nc.publish(
      subject,
      envelope({ status: 'healthy', component: `c${i % 100}`, instance: `i${i % instances}`, intervalMs: 60_000, seq: firstSeq + i, state: 'running' }),
    );
    if (i % 2000 === 0) await nc.flush();
  }
  await nc.flush();
}

/**
 * (b) Ingest rate of the aggregator against a bare JSON-parsing subscriber, same publisher and
 * messages (the bare one's on a subject of its own, so each flood reaches one of them). A first
 * flood makes the 10,000 instances known; then three floods each, interleaved, and the medians: a
 * single pass swung between 0.46x and 0.69x on this shared machine.
 */
async function ingest(server: NatsServer) {
  const COUNT = 200_000;
  const ROUNDS = 3;
  const publisher = await connect({ servers: server.url });
  const running = await startDaemon(server, ['--interval', '60s', '--max-instances', '20000']);
  const { dir, cleanup } = tempDir('bench-bare-');
  const script = path.join(dir, 'bare.mjs');
  const client = path.resolve('node_modules/@nats-io/transport-node/lib/mod.js');
  writeFileSync(
    script,
    `const { connect } = await import(${JSON.stringify(client)});\nconst nc = await connect({ servers: process.argv[2] });\nlet n = 0;\n` +
      `nc.subscribe('bench.health', { callback: (_e, m) => { JSON.parse(new TextDecoder().decode(m.data)); n++; } });\n` +
      `nc.subscribe('bench.count', { callback: (_e, m) => m.respond(String(n)) });\nawait nc.flush();\nconsole.log('ready');\n`,
  );
  // The bare subscriber: its own process, like the daemon; it answers a count on request.
  const bare = spawn(process.execPath, [script, server.url], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => bare.stdout.once('data', r));
  const received = {
    aggregator: async () => (await running.status()).ingest.received,
    bare: async () => Number((await publisher.request('bench.count', '', { timeout: 5000 })).string()),
  };
  let seq = 0;
  const rate = async (who: 'aggregator' | 'bare') => {
    const base = await received[who]();
    const t0 = performance.now();
    await flood(publisher, COUNT, 10_000, who === 'aggregator' ? SUBJECTS.health : 'bench.health', seq);
    seq += COUNT;
    await until(async () => (await received[who]()) >= base + COUNT, 120_000, `the ${who}`, 20);
    return COUNT / ((performance.now() - t0) / 1000);
  };
  await rate('aggregator');
  const rates = { aggregator: [] as number[], bare: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    rates.aggregator.push(await rate('aggregator'));
    rates.bare.push(await rate('bare'));
  }
  bare.kill();
  cleanup();
  await running.close();
  await publisher.close();
  const aggregator = median(rates.aggregator);
  const floor = median(rates.bare);
  console.log(
    `(b) ingest, ${COUNT} heartbeats over 10,000 instances, median of ${ROUNDS}: aggregator ${Math.round(aggregator)}/s, ` +
      `bare JSON subscriber ${Math.round(floor)}/s (${(aggregator / floor).toFixed(2)}x); target >= 0.75x: ${verdict(aggregator / floor >= 0.75)}`,
  );
}

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  // utime and stime, fields 14 and 15 of /proc/pid/stat, in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * (c) The daemon tracking 10,000 instances that beat every second: 9,999 peers
 * and itself (the sentinel counts itself), at the default cap of 10,000. One
 * peer more and every heartbeat would evict another (the figure says so).
 */
async function steadyLoad(server: NatsServer) {
  // The default cap, less the sentinel itself: at the cap, instances would evict one another.
  const INSTANCES = DEFAULTS.maxInstances - 1;
  const running = await startDaemon(server, ['--interval', '1s']);
  const pid = running.daemon.child.pid as number;
  const publisher = await connect({ servers: server.url });
  let stop = false;
  const seqs: number[] = Array(INSTANCES).fill(0);
  // Every instance beats once a second, spread evenly: 100 batches, one every 10 ms.
  const beat = (async () => {
    let batch = 0;
    const started = performance.now();
    while (!stop) {
      for (let i = batch % 100; i < INSTANCES; i += 100) {
        const seq = (seqs[i] ?? 0) + 1;
        seqs[i] = seq;
        publisher.publish(
          SUBJECTS.health,
          envelope({ status: 'healthy', component: `c${i % 50}`, instance: `i${i}`, intervalMs: 1000, seq, state: 'running' }),
        );
      }
      batch++;
      const next = started + batch * 10;
      await sleep(Math.max(0, next - performance.now()));
    }
  })();
  await sleep(5000);
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  await sleep(10_000);
  const cpu = (cpuSeconds(pid) - cpu0) / ((performance.now() - t0) / 1000);
  const status = await running.status();
  const evicted = status.ingest.evicted;
  const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
  stop = true;
  await beat;
  await publisher.close();
  await running.close();
  console.log(
    `(c) tracking ${status.tracked} instances at H = 1 s (${evicted} evicted): CPU ${(cpu * 100).toFixed(1)}% of a core (target < 25%: ${verdict(cpu < 0.25)}), ` +
      `RSS ${rss.toFixed(1)} MB (target < 150 MB: ${verdict(rss < 150)})`,
  );
}

/** (d) From the last heartbeat to the stale transition, 100 publishers stopping at random times. */
async function detection(server: NatsServer) {
  const H = 1000;
  const TRIALS = 100;
  const running = await startDaemon(server, ['--interval', '1s']);
  const listener = await connect({ servers: server.url });
  const staleAt = new Map<string, number>();
  listener.subscribe(SUBJECTS.healthChanged, {
    callback: (_e, m) => {
      const t = m.json<{ payload: Transition }>().payload;
      if (t.scope === 'instance' && t.to === 'stale' && t.instance) staleAt.set(t.instance, performance.now());
    },
  });
  await listener.flush();
  const publisher = await connect({ servers: server.url });
  const lastBeat = new Map<string, number>();
  const trials = Array.from({ length: TRIALS }, (_, i) => `t${i}`);
  await Promise.all(
    trials.map(async (instance, i) => {
      const stopAfter = 3000 + Math.random() * 3000;
      const started = performance.now();
      let seq = 0;
      // Start spread over one interval, like real containers.
      await sleep((i / TRIALS) * H);
      while (performance.now() - started < stopAfter) {
        publisher.publish(SUBJECTS.health, envelope({ status: 'healthy', component: 'trial', instance, intervalMs: H, seq: ++seq }));
        lastBeat.set(instance, performance.now());
        await sleep(H);
      }
    }),
  );
  await until(() => staleAt.size >= TRIALS, 15_000, 'every trial to go stale');
  const latencies = trials.map((t) => (staleAt.get(t) as number) - (lastBeat.get(t) as number));
  const target = 2.5 * H + 500;
  await publisher.close();
  await listener.close();
  await running.close();
  console.log(
    `(d) failure detection at H = 1 s over ${TRIALS} trials: p50 ${median(latencies).toFixed(0)} ms, p99 ${quantile(latencies, 0.99).toFixed(0)} ms, ` +
      `max ${Math.max(...latencies).toFixed(0)} ms; target p99 <= ${target} ms: ${verdict(quantile(latencies, 0.99) <= target)} ` +
      `(Docker's defaults: 90 s; Kubernetes': 30 s)`,
  );
}

/** (e) Ten simulated minutes of publishers with ±30% jitter and 1% loss, on a fake clock. */
function falseAlarms() {
  const PUBLISHERS = 100;
  const H = DEFAULTS.healthIntervalMs;
  const MINUTES = 10;
  const random = prng(42);
  const clock = new FakeClock();
  const transitions: Transition[] = [];
  const agg = new HealthAggregator({ clock, intervalMs: H, required: [], optional: [], maxInstances: 10_000, onTransition: (t) => transitions.push(t) });
  agg.setConnected(true);
  // Each heartbeat is due every H and arrives up to 30% of H early or late; 1% never arrive.
  const arrivals: { at: number; instance: string; seq: number }[] = [];
  let lost = 0;
  let doubleLosses = 0;
  for (let p = 0; p < PUBLISHERS; p++) {
    const phase = random() * H;
    let previousLost = false;
    for (let k = 0; phase + k * H < MINUTES * 60_000; k++) {
      const isLost = random() < 0.01;
      if (isLost) {
        lost++;
        if (previousLost) doubleLosses++;
      } else {
        arrivals.push({ at: phase + k * H + (random() * 2 - 1) * 0.3 * H, instance: `p${p}`, seq: k });
      }
      previousLost = isLost;
    }
  }
  arrivals.sort((a, b) => a.at - b.at);
  // Instances really silent past the bound at some point (two heartbeats lost in a row, late ones):
  // stale is the right call for them, a false alarm for any other.
  const bound = STALE_AFTER_INTERVALS * H + STALE_MARGIN;
  const lastAt = new Map<string, number>();
  const reallySilent = new Set<string>();
  for (const a of arrivals) {
    if (a.at - (lastAt.get(a.instance) ?? a.at) > bound) reallySilent.add(a.instance);
    lastAt.set(a.instance, a.at);
  }
  let next = 0;
  for (let t = 0; t <= MINUTES * 60_000; t += 100) {
    clock.advance(100);
    while (next < arrivals.length && (arrivals[next] as { at: number }).at <= clock.now()) {
      const a = arrivals[next++] as { instance: string; seq: number };
      agg.ingest({ status: 'healthy', component: 'sim', instance: a.instance, intervalMs: H, seq: a.seq });
    }
    agg.tick();
  }
  const stale = transitions.filter((t) => t.to === 'stale');
  const falseStale = stale.filter((t) => !reallySilent.has(t.instance ?? '')).length;
  const suspect = transitions.filter((t) => t.to === 'suspect').length;
  console.log(
    `(e) ${PUBLISHERS} publishers, H = 5 s, ±30% jitter, 1% loss (${lost} lost, ${doubleLosses} twice in a row), ${MINUTES} simulated minutes: ` +
      `${falseStale} false stale (target none: ${verdict(falseStale === 0)}), ${stale.length - falseStale} stale after a real silence past the bound, ${suspect} suspect`,
  );
}

/** (f) Per-heartbeat and per-sweep cost against the number of instances of one component. */
function flatness() {
  const cost = (n: number) => {
    const clock = new FakeClock();
    const agg = new HealthAggregator({ clock, intervalMs: 1000, required: [], optional: [], maxInstances: 20_000, maxPerComponent: 20_000, onTransition: () => undefined });
    agg.setConnected(true);
    const random = prng(n);
    const ids = Array.from({ length: n }, () => Math.floor(random() * 2 ** 48).toString(16));
    const beat = (id: string) => agg.ingest({ status: 'healthy', component: 'gw', instance: id, intervalMs: 1000 });
    for (const id of ids) beat(id);
    // Heartbeats of tracked instances: what a live system takes in all day.
    const rounds = Math.max(1, Math.floor(200_000 / n));
    let t0 = performance.now();
    for (let r = 0; r < rounds; r++) for (const id of ids) beat(id);
    const perBeat = ((performance.now() - t0) * 1e6) / (rounds * n);
    // Then they all fall silent: every sweep until they are all stale, per instance swept.
    t0 = performance.now();
    let sweeps = 0;
    for (let t = 0; t < 4000; t += 100) {
      clock.advance(100);
      agg.tick();
      sweeps++;
    }
    const perSweptInstance = ((performance.now() - t0) * 1e6) / (sweeps * n);
    return { perBeat, perSweptInstance };
  };
  // The floor: what any table of n instances pays per heartbeat (a Map lookup, a field written, a
  // least-recently-heard re-insert); it grows from 100 to 10,000 too, as the table outgrows the caches.
  const floor = (n: number) => {
    const random = prng(n);
    const keys = Array.from({ length: n }, () => `gw\u0000${Math.floor(random() * 2 ** 48).toString(16)}`);
    const table = new Map(keys.map((k) => [k, { lastSeen: 0, seq: 0 }]));
    const order = new Map(table);
    const rounds = Math.max(1, Math.floor(200_000 / n));
    const t0 = performance.now();
    for (let r = 0; r < rounds; r++) {
      for (const k of keys) {
        const t = table.get(k) as { lastSeen: number; seq: number };
        t.lastSeen = r;
        t.seq++;
        order.delete(k);
        order.set(k, t);
      }
    }
    return ((performance.now() - t0) * 1e6) / (rounds * n);
  };
  // Each size measured five times, interleaved, and the median kept: one pass swung between 1.3x and 2.6x at 10,000.
  const sizes = [100, 1000, 10_000];
  const trials = sizes.map(() => [] as (ReturnType<typeof cost> & { floor: number })[]);
  for (let trial = 0; trial < 5; trial++) sizes.forEach((n, i) => trials[i]?.push({ ...cost(n), floor: floor(n) }));
  const results = trials.map((runs) => ({
    perBeat: median(runs.map((r) => r.perBeat)),
    perSweptInstance: median(runs.map((r) => r.perSweptInstance)),
    floor: median(runs.map((r) => r.floor)),
  }));
  const base = results[0] as (typeof results)[number];
  const rows = sizes.map((n, i) => {
    const r = results[i] as typeof base;
    return (
      `    ${String(n).padStart(6)} instances of one component: ${r.perBeat.toFixed(0).padStart(5)} ns per heartbeat (${(r.perBeat / base.perBeat).toFixed(1)}x; ` +
      `floor ${r.floor.toFixed(0).padStart(4)} ns, ${(r.floor / base.floor).toFixed(1)}x), ${r.perSweptInstance.toFixed(0).padStart(5)} ns per instance per sweep (${(r.perSweptInstance / base.perSweptInstance).toFixed(1)}x)`
    );
  });
  const last = results.at(-1) as typeof base;
  const flat = last.perBeat / base.perBeat < 3 && last.perSweptInstance / base.perSweptInstance < 3;
  console.log(`(f) cost against the size of one component (opaque ids; the aggregator on a fake clock; median of 5):\n${rows.join('\n')}\n    target: flat, under 3x from 100 to 10,000: ${verdict(flat)}`);
}

async function main() {
  const which = new Set(process.argv.slice(2));
  const run = (name: string) => which.size === 0 || which.has(name);
  const server = await NatsServer.start({ config: 'max_pending: 268435456\n' });
  try {
    console.log('nachos-sentinel health benchmark\n');
    if (run('probe')) await probeCost(server);
    if (run('ingest')) await ingest(server);
    if (run('load')) await steadyLoad(server);
    if (run('detection')) await detection(server);
    if (run('alarms')) falseAlarms();
    if (run('flat')) flatness();
  } finally {
    await server.stop();
  }
}

await main();

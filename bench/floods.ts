/**
 * Flood benchmark (issue 16): what a peer can make a signed central sentinel
 * spend, in one run, each rate beside the idle floor.
 *
 *   npx tsx bench/floods.ts             (FLOOD_SECONDS=5 per rate by default)
 *
 * The central is the built executable, deployed as users deploy it: signed
 * (`--signing-seed`), default limits, `--interval 1s`. A flooder in its own
 * process sends requests whose replies go to an inbox nobody reads, as the
 * outside pass did, at each rate in turn:
 *
 * (i)  empty `nachos.system.policy.current` requests, against a 4.6 KB set;
 * (ii) transfer-part requests, against a 2.7 MB set (a head and three parts
 *      at the default max_payload of 1 MB).
 *
 * For each rate: the central's largest heartbeat gap (in intervals; held
 * below 1.5), its peak RSS beside its idle RSS (held below 2x), and whether a
 * well-behaved requester asking once a second is still answered. A rate is
 * "held" when all three hold.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { SUBJECTS } from '../src/protocol/topics.js';
import { BIN, Daemon } from '../test/helpers/daemon.js';
import { NatsServer } from '../test/helpers/nats-server.js';
import { signingKey } from '../test/helpers/signing.js';
import { tempDir } from '../test/helpers/temp-dir.js';
import { until } from '../test/helpers/until.js';

const SECONDS = Number(process.env.FLOOD_SECONDS ?? 5);
const H = 1000;
const NODE = process.env.NODE_BIN ?? process.execPath;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssMb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
}

/** The flooder: its own process, its own connection; replies to an inbox nobody subscribed. */
const FLOODER = `
const { connect } = await import(process.env.NATS_MODULE);
const nc = await connect({ servers: process.env.URL });
const rate = Number(process.env.RATE), ms = Number(process.env.MS), subject = process.env.SUBJECT;
const bodies = JSON.parse(process.env.BODIES);
let sent = 0; const t0 = performance.now();
while (performance.now() - t0 < ms) {
  const due = Math.floor(((performance.now() - t0) / 1000) * rate);
  for (; sent < due; sent++) nc.publish(subject, bodies[sent % bodies.length], { reply: '_INBOX.flood.' + sent });
  await new Promise((r) => setTimeout(r, 5));
}
await nc.flush(); await nc.close();
process.stdout.write(String(sent));
`;

async function scenario(name: string, server: NatsServer, policies: string, seedFile: string, rates: number[], request: (head: Record<string, unknown>) => { subject: string; bodies: string[] }) {
  const central = Daemon.start(['--servers', server.url, '--policies', policies, '--signing-seed', seedFile, '--interval', `${H}ms`, '--log-level', 'warn', '--http', 'off'], {}, undefined, undefined, { bin: BIN, node: NODE });
  const nc = await connect({ servers: server.url });
  const beats: number[] = [];
  let head: Record<string, unknown> | undefined;
  nc.subscribe(SUBJECTS.health, {
    callback: (_e, m) => {
      if (m.json<{ source: string }>().source === 'sentinel') beats.push(performance.now());
    },
  });
  nc.subscribe(SUBJECTS.policyReload, {
    callback: (_e, m) => {
      head = m.json<{ payload: Record<string, unknown> }>().payload;
    },
  });
  try {
    await until(() => head, 20_000, 'the first announcement');
    await sleep(3 * H);
    const idle = rssMb(central.child.pid as number);
    console.log(`\n(${name}) idle RSS ${idle.toFixed(1)} MB; H = ${H} ms; ${SECONDS} s per rate`);
    console.log('  rate/s   sent   max gap (H)   peak RSS (x idle)   control answered   verdict');
    const { subject, bodies } = request(head as Record<string, unknown>);
    for (const rate of rates) {
      const from = performance.now();
      let peak = idle;
      const sampler = setInterval(() => (peak = Math.max(peak, rssMb(central.child.pid as number))), 50);
      let asked = 0;
      let answered = 0;
      const control = setInterval(() => {
        asked++;
        nc.request(SUBJECTS.policyCurrent, '', { timeout: 900 }).then(
          (m) => !m.headers?.get('Nats-Service-Error') && answered++,
          () => undefined,
        );
      }, 1000);
      const flooder = spawn(NODE, ['--input-type=module', '-e', FLOODER], {
        env: { URL: server.url, RATE: String(rate), MS: String(SECONDS * 1000), SUBJECT: subject, BODIES: JSON.stringify(bodies), NATS_MODULE: import.meta.resolve('@nats-io/transport-node') },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      flooder.stdout.on('data', (c: Buffer) => (out += c.toString()));
      await new Promise((r) => flooder.once('exit', r));
      await sleep(1500);
      clearInterval(sampler);
      clearInterval(control);
      const at = beats.filter((t) => t >= from);
      let gap = 0;
      for (let i = 1; i < at.length; i++) gap = Math.max(gap, (at[i] as number) - (at[i - 1] as number));
      const held = gap < 1.5 * H && peak < 2 * idle && answered >= asked - 1;
      console.log(
        `  ${String(rate).padStart(6)} ${out.padStart(6)}   ${(gap / H).toFixed(2).padStart(10)}   ${(peak / idle).toFixed(2).padStart(16)}   ${`${answered}/${asked}`.padStart(15)}   ${held ? 'held' : 'NOT HELD'}`,
      );
      await sleep(1000);
    }
  } finally {
    await nc.close();
    await central.stop();
  }
}

async function main() {
  const server = await NatsServer.start();
  const { dir: root, cleanup } = tempDir('bench-floods-');
  try {
    const { seedFile } = signingKey(root);
    const version = (cmd: string, arg: string) => spawnSync(cmd, [arg], { encoding: 'utf8' }).stdout.trim();
    console.log(`flood benchmark: Node ${version(NODE, '--version')}, ${version('nats-server', '--version')}, a signed central (compiled), default limits`);
    // (i) a 4.6 KB set.
    const small = path.join(root, 'small');
    mkdirSync(small);
    for (let i = 0; i < 6; i++) {
      const rules = Array.from({ length: 5 }, (_, r) => `[[rules]]\nid = "p${i}-${r}"\npriority = ${r + 1}\nmatch = { resource = "tool", resourceId = "tool-${i}-${r}-${'x'.repeat(60)}" }\neffect = "allow"\n`);
      writeFileSync(path.join(small, `p${i}.toml`), `version = "1.0"\n${rules.join('\n')}`);
    }
    await scenario('i: policy.current', server, small, seedFile, [200, 1000, 5000, 20000], () => ({ subject: SUBJECTS.policyCurrent, bodies: [''] }));
    // (ii) a 2.7 MB set.
    const big = path.join(root, 'big');
    mkdirSync(big);
    for (let i = 0; i < 3; i++) {
      writeFileSync(path.join(big, `big${i}.toml`), `version = "1.0"\n# ${randomBytes(450_000).toString('hex')}\n[[rules]]\nid = "big${i}"\npriority = 1\nmatch = { resource = "tool" }\neffect = "allow"\n`);
    }
    await scenario('ii: transfer parts', server, big, seedFile, [100, 800, 1500, 5000], (head) => {
      const t = head.transfer as { subject: string; sha256: string; parts: number };
      return { subject: t.subject, bodies: Array.from({ length: t.parts }, (_, part) => JSON.stringify({ sha256: t.sha256, part })) };
    });
  } finally {
    await server.stop();
    cleanup();
  }
}

await main();

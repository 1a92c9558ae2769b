import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect } from 'vitest';
import type { PolicyReloadPayload } from '../../src/policy/announcements.js';
import { SUBJECTS } from '../../src/protocol/topics.js';
import { verifyReload } from '../../src/subscriber/verify-reload.js';
import type { BusListener } from '../helpers/bus-listener.js';
import { test } from '../helpers/fixtures.js';
import { signingKey } from '../helpers/signing.js';

/**
 * Issue 16's floods against a signed central sentinel on a real nats-server:
 * what any peer may ask costs a bounded amount, and the central's own
 * heartbeat goes on. The floods run from another connection, their replies
 * sent to inboxes nobody reads, as the outside pass sent them.
 */

const H = 300;

/** The largest gap between two heartbeats of `component` seen by `listener` after `from` (ms). */
function maxGap(listener: BusListener, component: string, from: number): number {
  const at = listener.messages.filter((m) => m.subject === SUBJECTS.health && m.envelope.source === component && m.at >= from).map((m) => m.at);
  let gap = 0;
  for (let i = 1; i < at.length; i++) gap = Math.max(gap, (at[i] as number) - (at[i - 1] as number));
  return gap;
}

/** Publishes `perSecond` requests on `subject` for `ms`, each with a reply inbox nobody reads. */
async function flood(listener: BusListener, subject: string, data: () => Uint8Array | string, perSecond: number, ms: number): Promise<number> {
  let sent = 0;
  const started = performance.now();
  while (performance.now() - started < ms) {
    const due = Math.floor(((performance.now() - started) / 1000) * perSecond);
    for (; sent < due; sent++) listener.nc.publish(subject, data(), { reply: `_INBOX.flood.${sent}` });
    await new Promise((r) => setTimeout(r, 10));
  }
  return sent;
}

describe('issue 16, the central sentinel under request floods', () => {
  test('a flood of empty policy.current requests costs no signature; its heartbeat and status answers go on (break 1)', async ({ root, dir, sentinel, listen }) => {
    // A 4.6 KB set, as the outside pass had.
    for (let i = 0; i < 6; i++) {
      writeFileSync(
        path.join(dir, `p${i}.toml`),
        `version = "1.0"\n${Array.from({ length: 5 }, (_, r) => `[[rules]]\nid = "p${i}-${r}"\npriority = ${r + 1}\nmatch = { resource = "tool", resourceId = "tool-${i}-${r}-${'x'.repeat(60)}" }\neffect = "allow"\n`).join('\n')}`,
      );
    }
    const { seedFile, publicKey } = signingKey(root);
    const watch = await listen([SUBJECTS.health, SUBJECTS.policyReload]);
    const running = await sentinel({ 'signing-seed': seedFile, interval: `${H}ms` });
    await running.connected();
    await watch.waitFor(SUBJECTS.policyReload, 1);
    const signer = running.sentinel.signer as NonNullable<typeof running.sentinel.signer>;
    let signatures = 0;
    const sign = signer.sign.bind(signer);
    signer.sign = (message) => {
      signatures++;
      return sign(message);
    };

    const flooder = await listen([]);
    const started = performance.now();
    const flooding = flood(flooder, SUBJECTS.policyCurrent, () => '', 200, 3000);
    flooding.catch(() => undefined);
    // Meanwhile, another requester asks as a sidecar would, and someone asks for the status.
    const answers: boolean[] = [];
    while (performance.now() - started < 2800) {
      const reply = await watch.nc.request(SUBJECTS.policyCurrent, '', { timeout: 2000 });
      answers.push(verifyReload(reply.json(), publicKey).ok);
      const status = await watch.nc.request(SUBJECTS.healthStatus, '', { timeout: 2000 });
      expect(status.json<{ payload: { status: string } }>().payload.status).toMatch(/^(healthy|degraded|unhealthy|unknown)$/);
      await new Promise((r) => setTimeout(r, 300));
    }
    const sent = await flooding;
    expect(sent).toBeGreaterThan(500);
    // Every reply is the announcement signed once: not one signature for the whole flood.
    expect(signatures).toBe(0);
    expect(answers.length).toBeGreaterThan(3);
    expect(answers.every(Boolean)).toBe(true);
    // One requester past its rate is shed (a 503 while that is cheap).
    expect(running.sentinel.announcer.currentGate.shed.requester).toBeGreaterThan(sent / 2);
    // Its heartbeat went on (the outside pass saw gaps of 4 to 7 s); a loose bound, for a busy machine.
    expect(maxGap(watch, 'sentinel', started)).toBeLessThan(4 * H);
  });

  test('a flood of transfer-part requests for a 2.7 MB set leaves its memory bounded (break 2)', async ({ root, sentinel, listen }) => {
    const big = path.join(root, 'big');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(big);
    // Three files of about 0.9 MB: a head, and a body of three parts at the default max_payload (1 MB).
    for (let i = 0; i < 3; i++) {
      const filler = randomBytes(450_000).toString('hex');
      writeFileSync(path.join(big, `big${i}.toml`), `version = "1.0"\n# ${filler}\n[[rules]]\nid = "big${i}"\npriority = 1\nmatch = { resource = "tool" }\neffect = "allow"\n`);
    }
    const watch = await listen([SUBJECTS.health, SUBJECTS.policyReload]);
    const running = await sentinel({ policies: big, interval: `${H}ms` });
    await running.connected();
    const [head] = await watch.waitFor(SUBJECTS.policyReload, 1, 10_000);
    const transfer = (head?.payload as unknown as PolicyReloadPayload).transfer;
    expect(transfer?.parts).toBe(3);
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    const flooder = await listen([]);
    const started = performance.now();
    let peakOutstanding = 0;
    const budget = (running.sentinel.announcer.transferGate as unknown as { bytes: { outstanding: number } }).bytes;
    const sampler = setInterval(() => (peakOutstanding = Math.max(peakOutstanding, budget.outstanding)), 5);
    let part = 0;
    const sent = await flood(flooder, transfer?.subject as string, () => JSON.stringify({ sha256: transfer?.sha256, part: part++ % 3 }), 800, 3000);
    clearInterval(sampler);
    await flooder.nc.flush();
    const rssGrowth = process.memoryUsage().rss - rssBefore;
    expect(sent).toBeGreaterThan(1500);
    // What is sent but not yet with the server stays under the bound (16 MiB, or four messages).
    expect(peakOutstanding).toBeLessThanOrEqual(16 * 1024 * 1024 + 1024 * 1024);
    // The outside pass saw 82 MB grow to 3.2 GB in under 3 s.
    expect(rssGrowth).toBeLessThan(300 * 1024 * 1024);
    const shed = running.sentinel.announcer.transferGate.shed;
    expect(shed.requester + shed.total + shed.bytes + shed.outstanding).toBeGreaterThan(sent / 2);
    expect(maxGap(watch, 'sentinel', started)).toBeLessThan(4 * H);
    rmSync(big, { recursive: true, force: true });
  }, 30_000);
});

import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect } from 'vitest';
import { blocksOf, doc, ROOT } from '../helpers/docs.js';
import { it } from '../helpers/fixtures.js';

/**
 * A newcomer, as the README speaks to one: a fresh clone in a private home
 * directory (mode 0700), the README's first command run as written in a
 * network namespace of its own, where nothing listens on the default port
 * (so `npm start` must bring its private bus, and `--once` must answer 0),
 * then the signed path of the README: keygen, a signed central, a sidecar
 * with the public key, `verify --current`. npm installs from its cache (no
 * network in the namespace). The README's second command, `npm test`, is the
 * run this test is part of.
 */

/** Whether this machine lets the suite make a network namespace (root, with unshare and ip). */
function namespaces(): string | undefined {
  const probe = spawnSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up'], { encoding: 'utf8' });
  return probe.status === 0 ? undefined : `no network namespace here (unshare -n: ${(probe.stderr || probe.error?.message || `exit ${probe.status}`).trim()})`;
}
const unavailable = namespaces();

describe.skipIf(unavailable !== undefined)(`a newcomer, from a fresh clone${unavailable ? `: skipped, ${unavailable}` : ''}`, () => {
  it("runs the README's first command in a network namespace with nothing on 4222 (the private bus starts, --once exits 0), then keygen, a signed central, a sidecar, verify", async ({ root }) => {
    const home = path.join(root, 'home');
    mkdirSync(home);
    chmodSync(home, 0o700);
    const clone = path.join(home, 'nachos-sentinel');
    execFileSync('git', ['clone', '--quiet', '--no-hardlinks', ROOT, clone]);
    // The README's two commands: the first, run here as written; the second is this suite.
    const [first, second] = (blocksOf(doc('README.md'), 'sh')[0] ?? '').split('\n').map((l) => l.replace(/\s+#.*$/, '').trim());
    expect(first).toBe('npm ci && npm start');
    expect(second).toBe('npm test');
    const delivered = path.join(home, 'delivered');
    const script = path.join(home, 'newcomer.sh');
    writeFileSync(
      script,
      [
        'set -u',
        'ip link set lo up',
        `cd ${clone}`,
        'echo "== 4222 before: $( (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null && echo open || echo closed)"',
        // Each in a session of its own, so that all of it (npm, node, the private bus) is stopped at the end.
        `setsid bash -c ${JSON.stringify(first)} > start.log 2>&1 & START=$!`,
        // npm ci builds on `prepare`; then npm start brings the bus and the daemon.
        'for i in $(seq 1 600); do grep -q "policy set accepted" start.log 2>/dev/null && break; sleep 0.5; done',
        'node dist/cli/bin.cjs --once --timeout 10s > once.out 2>&1; echo "== once exit $?"',
        'echo "== private bus: $(grep -c "started a private bus at nats://127.0.0.1:4222" start.log)"',
        'kill -TERM -- -$START; wait $START 2>/dev/null; sleep 1',
        // The signed path.
        'KEY=$(node dist/cli/bin.cjs keygen --out sentinel.nk 2>/dev/null)',
        'echo "== key $KEY mode $(stat -c %a sentinel.nk)"',
        'setsid node dist/cli/bin.cjs --dev --signing-seed sentinel.nk --deployment prod --require gateway --http off > central.log 2>&1 & CENTRAL=$!',
        'for i in $(seq 1 100); do grep -q "announced" central.log 2>/dev/null && break; sleep 0.2; done',
        `setsid node dist/cli/bin.cjs sidecar --component gateway --deliver-to ${delivered} --public-key "$KEY" --deployment prod > sidecar.log 2>&1 & SIDECAR=$!`,
        'for i in $(seq 1 100); do grep -q "delivered the policy set" sidecar.log 2>/dev/null && break; sleep 0.2; done',
        `echo "== delivered $(ls ${delivered} | tr '\\n' ' ')"`,
        'node dist/cli/bin.cjs verify --current --public-key "$KEY" --deployment prod; echo "== verify exit $?"',
        'node dist/cli/bin.cjs verify --current --public-key "$KEY" --deployment staging; echo "== verify other deployment exit $?"',
        'kill -TERM -- -$SIDECAR -$CENTRAL; wait $SIDECAR $CENTRAL 2>/dev/null; sleep 1',
        // What is left of this script's own sessions, and the private bus (a session of its own), never
        // another test's daemons (the network is this namespace's, the process table the machine's).
        'left() { echo $(( $(pgrep -c -s $START,$CENTRAL,$SIDECAR || true) + $(pgrep -c -f "nats-server -a 127.0.0.1 -p 4222$" || true) )); }',
        'for i in $(seq 1 50); do [ "$(left)" = 0 ] && break; sleep 0.2; done',
        'echo "== left: $(left)"; pgrep -a -s $START,$CENTRAL,$SIDECAR; pgrep -af "nats-server -a 127.0.0.1 -p 4222$"',
      ].join('\n'),
    );
    const run = spawnSync('unshare', ['-n', 'bash', script], {
      encoding: 'utf8',
      timeout: 280_000,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? home, npm_config_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false' },
    });
    const out = run.stdout;
    const log = (file: string) => {
      try {
        return readFileSync(path.join(clone, file), 'utf8').slice(-2000);
      } catch {
        return '';
      }
    };
    const why = `\n${out}\n${run.stderr}\nstart.log:\n${log('start.log')}\nonce.out:\n${log('once.out')}`;
    expect(out, why).toContain('== 4222 before: closed');
    expect(out, why).toContain('== private bus: 1');
    expect(out, why).toContain('== once exit 0');
    expect(out, why).toMatch(/== key A[A-Z2-7]{55} mode 600/);
    expect(out, why).toContain('== delivered permissive.yaml standard.yaml strict.yaml');
    expect(out, why).toMatch(/valid: revision [0-9a-f]{64} signed by A[A-Z2-7]{55} for deployment prod, until \S+\n== verify exit 0/);
    // Nothing left running: the daemons stopped on SIGTERM, each stopping its private bus.
    expect(out, why).toContain('== left: 0');
    expect(out, why).toMatch(/invalid: wrong deployment \(the message is for "prod", this configuration for "staging"\)\n== verify other deployment exit 1/);
  }, 300_000);
});

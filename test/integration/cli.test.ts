import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect } from 'vitest';
import { SUBJECTS } from '../../src/protocol/topics.js';
import { Daemon } from '../helpers/daemon.js';
import { it } from '../helpers/fixtures.js';
import { freePort } from '../helpers/nats-server.js';
import { policyText } from '../helpers/policy-files.js';
import { shellRevision } from '../helpers/revision.js';
import { until } from '../helpers/until.js';

const version = (await import('../../package.json', { with: { type: 'json' } })).default.version;

describe('the nachos-sentinel executable', () => {
  it('prints its help and version', async () => {
    const help = await Daemon.run(['--help']);
    expect(help.code).toBe(0);
    for (const flag of ['--servers', '--policies', '--config', '--quiet-window', '--log-level', 'validate']) {
      expect(help.stdout).toContain(flag);
    }
    expect(await Daemon.run(['--version'])).toMatchObject({ code: 0, stdout: `${version}\n` });
    expect(await Daemon.run(['-v'])).toMatchObject({ code: 0, stdout: `${version}\n` });
  });

  it('exits 2 on a bad flag or command, saying what is wrong', async () => {
    // A closed port, so that a flag parsed wrongly never starts a daemon against a real bus.
    const nowhere = ['--servers', 'nats://127.0.0.1:1'];
    expect(await Daemon.run([...nowhere, '--polices', 'x'])).toMatchObject({
      code: 2,
      stderr: 'nachos-sentinel: unknown flag --polices (did you mean --policies?); see --help\n',
    });
    expect(await Daemon.run([...nowhere, '--policies'])).toMatchObject({ code: 2, stderr: 'nachos-sentinel: flag --policies needs a value\n' });
    const unknown = await Daemon.run(['frobnicate', ...nowhere]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
  });

  it('exits 2 on a bad config value, naming the key and the file, before connecting to anything', async ({ root, dir }) => {
    const config = path.join(root, 'sentinel.toml');
    writeFileSync(config, 'servers = "nats://127.0.0.1:1"\nrescan_interval = "often"\n');
    const result = await Daemon.run(['--config', config], {}, root);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      `nachos-sentinel: ${config}:2:1: key "rescan_interval": must be a duration such as "50ms", "5s" or "1m", got "often"\n`,
    );
    expect(result.stdout).toBe(''); // nothing started, nothing logged
    const env = await Daemon.run([], { SENTINEL_CONFIG: config, POLICY_PATH: dir }, root);
    expect(env.code).toBe(2);
  });

  it('validates a directory offline: exit 0 when valid, 1 with file:line:col when not', async ({ root, dir }) => {
    // For Nachos (the default consumer), a TOML file is valid but not in force: said; for a bus subscriber, nothing to say.
    const forNachos = await Daemon.run(['validate', dir], {}, root);
    expect(forNachos).toMatchObject({
      code: 0,
      stdout: `policies/a.toml: warning: Nachos' loader reads only *.yaml and *.yml: the rule in a.toml is not in force in a Nachos gateway\nok: 1 file, 1 rule, revision ${shellRevision(dir)}, 1 warning\n`,
    });
    const ok = await Daemon.run(['validate', dir, '--consumer', 'bus'], {}, root);
    expect(ok).toMatchObject({ code: 0, stdout: `ok: 1 file, 1 rule, revision ${shellRevision(dir)}\n` });

    writeFileSync(path.join(dir, 'b.toml'), 'version = "1.0"\n[[rules]]\nid = "a1"\npriority = 1\nmatch = {}\neffect = "allow"\n');
    writeFileSync(path.join(dir, 'c.toml'), 'version = "1.0"\nrules = [\n');
    const bad = await Daemon.run(['validate', 'policies', '--consumer', 'bus'], {}, root);
    expect(bad.code).toBe(1);
    expect(bad.stdout.split('\n')).toEqual([
      'policies/b.toml:3:1: rule id "a1" is already used at a.toml:8; ids must be unique across the policy directory (rule "a1")',
      expect.stringMatching(/^policies\/c\.toml:3:1: TOML syntax: /),
      'invalid: 2 problems in policies',
      'the daemon refuses the whole set; to take the valid files and leave each invalid one out (each problem says what Nachos\' own loader does with its file), set [policy] invalid_files = "skip-file" (--invalid-files skip-file, SENTINEL_INVALID_FILES)',
      '',
    ]);
    const json = await Daemon.run(['validate', 'policies', '--json', '--consumer', 'bus'], {}, root);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ valid: false, problems: [{ file: 'policies/b.toml', line: 3 }, { file: 'policies/c.toml' }] });
  });

  it('validates a Nachos-style YAML directory with the built executable: warnings only, reject-set, skip-file, strict keys', async ({ root }) => {
    const fixtures = path.resolve(import.meta.dirname, '../fixtures/nachos-style');
    const only = path.join(root, 'baseline');
    mkdirSync(only);
    copyFileSync(path.join(fixtures, 'baseline.yaml'), path.join(only, 'baseline.yaml'));
    const warned = await Daemon.run(['validate', 'baseline'], {}, root);
    expect(warned.code).toBe(0);
    expect(warned.stdout.split('\n').slice(0, 2)).toEqual(['baseline/baseline.yaml:10:3: warning: metadata: unknown key "owner"', 'baseline/baseline.yaml:33:5: warning: rules[1]: unknown key "audit" (rule "baseline-dm-paired")']);
    expect(warned.stdout).toMatch(new RegExp(`\nok: 1 file, 5 rules, revision ${shellRevision(only)}, 5 warnings\n$`));
    const strict = await Daemon.run(['validate', 'baseline', '--strict-keys'], {}, root);
    expect(strict.code).toBe(1);
    expect(strict.stdout).toMatch(/^baseline\/baseline\.yaml:10:3: metadata: unknown key "owner"\n/);

    const rejected = await Daemon.run(['validate', fixtures]);
    expect(rejected.code).toBe(1);
    expect(rejected.stdout).toMatch(/sandbox\.yml:9:35: .*got "not_starts_with_any"; Nachos' own loader refuses this too and skips the whole of sandbox\.yml: its 2 rules \(1 allow, 1 deny\) would not be in force/);
    expect(rejected.stdout).toMatch(/\ninvalid: 2 problems in .*, 8 warnings\nthe daemon refuses the whole set; .*--invalid-files skip-file/);
    const skipping = await Daemon.run(['validate', fixtures], { SENTINEL_INVALID_FILES: 'skip-file' });
    expect(skipping.code).toBe(1);
    expect(skipping.stdout).toMatch(new RegExp(`with invalid_files = skip-file the daemon leaves out \\S*sandbox\\.yml, \\S*workspace\\.yaml and announces 1 file, 5 rules, revision ${shellRevision(only)}\n$`));
    const json = JSON.parse((await Daemon.run(['validate', fixtures, '--json', '--invalid-files', 'skip-file'])).stdout) as Record<string, unknown>;
    expect(json).toMatchObject({ valid: false, revision: shellRevision(only), rules: 5, skipped: [expect.stringMatching(/sandbox\.yml$/), expect.stringMatching(/workspace\.yaml$/)] });
    expect(await Daemon.run(['validate', fixtures, '--invalid-files', 'sometimes'])).toMatchObject({ code: 2, stderr: 'nachos-sentinel: --invalid-files: "sometimes" is not a mode; use reject-set or skip-file\n' });
  });

  it('runs as a daemon: announces, logs JSON lines with component and instance, stops cleanly on SIGTERM', async ({ server, dir, daemon, listen }) => {
    const listener = await listen([SUBJECTS.policyReload]);
    const d = daemon(['--servers', server.url], { POLICY_PATH: dir });
    await listener.waitFor(SUBJECTS.policyReload, 1, 10_000);
    expect(listener.on(SUBJECTS.policyReload)[0]?.payload).toMatchObject({ reason: 'startup', revision: shellRevision(dir) });
    const logs = d.logs;
    expect(logs.length).toBeGreaterThan(0);
    for (const line of logs) expect(line).toMatchObject({ component: 'sentinel', instance: expect.stringMatching(/-[0-9a-f]{6}$/) });
    expect(new Set(logs.map((l) => l.instance)).size).toBe(1);

    const stopped = await d.stop('SIGTERM');
    expect(stopped.code).toBe(0);
    expect(stopped.elapsedMs).toBeLessThan(2000);
    expect(d.logs.at(-1)).toMatchObject({ msg: 'stopped' });
  });

  it('logs a clean stop as one: no warning that it is missing or the system unhealthy; names the files of an accepted change', async ({ server, dir, daemon, listen }) => {
    const listener = await listen([SUBJECTS.policyReload]);
    const d = daemon(['--servers', server.url, '--policies', dir, '--interval', '200ms']);
    await listener.waitFor(SUBJECTS.policyReload, 1, 10_000);
    writeFileSync(path.join(dir, 'b.toml'), policyText('b1'));
    await listener.waitFor(SUBJECTS.policyReload, 2, 5000);
    // The log is asynchronous: its line may come a moment after the announcement (seen once on Node 24).
    const accepted = () => d.logs.filter((l) => String(l.msg).startsWith('policy set accepted: ')).map((l) => l.msg);
    await until(() => accepted().length >= 2, 5000, 'the second accepted line');
    expect(accepted()).toEqual(['policy set accepted: +a.toml', 'policy set accepted: +b.toml']);
    await until(() => d.logs.some((l) => String(l.msg).startsWith('health: overall unknown -> ')), 5000, 'the verdict');
    expect((await d.stop('SIGTERM')).code).toBe(0);
    const after = d.logs.slice(d.logs.findIndex((l) => l.msg === 'shutting down'));
    expect(after.filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([]);
  });

  it('logs one line per event with --log-format pretty', async ({ server, dir, daemon }) => {
    const d = daemon(['--servers', server.url, '--policies', dir, '--log-format', 'pretty', '--interval', '200ms']);
    await until(() => d.stdout.includes('policy set accepted'), 10_000, 'the first set');
    await until(() => d.stdout.includes('health: overall'), 5000, 'a transition, whose fields are an object');
    const lines = d.stdout.split('\n').filter(Boolean);
    // pino-pretty's multi-line form indents each field on a line of its own; one event is one line here.
    expect(lines.filter((l) => /^\s/.test(l))).toEqual([]);
    expect(lines.every((l) => /^\[\d\d:\d\d:\d\d\.\d{3}\] (INFO|WARN|ERROR|DEBUG)/.test(l))).toBe(true);
    // What the message says in words is not repeated as an object.
    const transition = lines.find((l) => l.includes('health: overall')) ?? '';
    expect(transition).not.toContain('"scope"');
    expect(lines.find((l) => l.includes('policy set accepted')) ?? '').not.toContain('"added"');
    await d.stop();
  });

  it('stops cleanly on SIGINT too, and within 2 s even while the bus is unreachable', async ({ dir, daemon }) => {
    const port = await freePort();
    const d = daemon(['--servers', `nats://127.0.0.1:${port}`, '--policies', dir]);
    await d.waitForLog((l) => l.msg === 'bus not reachable yet; retrying (the bus must start first)');
    const stopped = await d.stop('SIGINT');
    expect(stopped).toMatchObject({ code: 0 });
    expect(stopped.elapsedMs).toBeLessThan(2000);
  });

  it('reads the policy set again on SIGHUP, and keeps running', async ({ server, dir, daemon, listen }) => {
    const listener = await listen([SUBJECTS.policyReload]);
    // A file behind a link, in a subdirectory the watcher does not watch: only a re-read sees its edits.
    mkdirSync(path.join(dir, 'sub'));
    writeFileSync(path.join(dir, 'sub', 'o.toml'), policyText('o1'));
    symlinkSync('sub/o.toml', path.join(dir, 'o.toml'));
    const d = daemon(['--servers', server.url, '--policies', dir, '--rescan-interval', '0']);
    await listener.waitFor(SUBJECTS.policyReload, 1, 10_000);
    writeFileSync(path.join(dir, 'sub', 'o.toml'), policyText('o1', 'o2'));
    d.child.kill('SIGHUP');
    await listener.waitFor(SUBJECTS.policyReload, 2, 5000);
    expect(listener.on(SUBJECTS.policyReload)[1]?.payload).toMatchObject({ reason: 'change', revision: shellRevision(dir) });
    expect(d.logs.find((l) => l.msg === 'reading the policy set again')).toMatchObject({ signal: 'SIGHUP' });
    expect(d.exit).toBeUndefined();
    expect(await d.stop()).toMatchObject({ code: 0 });
  });

  it('stops within 2 s, with margin, on SIGTERM in the middle of an edit burst over 1,000 files', async ({ server, dir, daemon, listen }) => {
    for (let i = 0; i < 1000; i++) writeFileSync(path.join(dir, `p${i}.toml`), policyText(`p${i}`));
    const listener = await listen([SUBJECTS.policyReload]);
    const d = daemon(['--servers', server.url, '--policies', dir]);
    await listener.waitFor(SUBJECTS.policyReload, 1, 10_000);
    let i = 0;
    const burst = setInterval(() => writeFileSync(path.join(dir, `p${i++ % 1000}.toml`), policyText(`p${i}`, `q${i}`)), 2);
    // Well into the burst: reads of 1,000 files in flight, put off, started again.
    await until(() => d.logs.length > 0 && i > 300, 10_000, 'the burst under way');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const stopped = await d.stop('SIGTERM');
    clearInterval(burst);
    expect(stopped.code).toBe(0);
    // The daemon's own deadline is 1.5 s: half a second of margin under the 2 s it promises.
    expect(stopped.elapsedMs).toBeLessThan(2000);
  });

  it('never logs the credentials in a server URL', async ({ dir, daemon }) => {
    const port = await freePort();
    const d = daemon(['--servers', `nats://alice:s3cret-pw@127.0.0.1:${port}`, '--policies', dir, '--log-level', 'trace']);
    await d.waitForLog((l) => l.msg === 'bus not reachable yet; retrying (the bus must start first)');
    await d.stop();
    expect(d.stdout + d.stderr).not.toContain('s3cret-pw');
    expect(d.stdout).toContain(`nats://127.0.0.1:${port}`);
  });

  it('takes its settings from the environment as documented', async ({ server, dir, daemon, listen }) => {
    const listener = await listen([SUBJECTS.policyReload]);
    const d = daemon([], { NATS_URL: server.url, POLICY_PATH: dir, LOG_LEVEL: 'warn', SENTINEL_COMPONENT: 'sentinel-b' });
    const [env] = await listener.waitFor(SUBJECTS.policyReload, 1, 10_000);
    expect(env?.source).toBe('sentinel-b');
    await d.stop();
    expect(d.logs.every((l) => l.level === 'warn' || l.level === 'error')).toBe(true);
  });
});

import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect } from 'vitest';
import { Beater } from '../helpers/beater.js';
import { BIN, Daemon } from '../helpers/daemon.js';
import { it } from '../helpers/fixtures.js';
import { freePort } from '../helpers/nats-server.js';
import { policyDir } from '../helpers/policy-files.js';
import { until } from '../helpers/until.js';

describe('nachos-sentinel status', () => {
  let daemon: Daemon;
  let gateway: Beater;
  let cleanup: () => void;

  // One daemon and one gateway for the whole file: each test only reads what they say.
  it.beforeAll(async ({ server }) => {
    let dir: string;
    ({ dir, cleanup } = policyDir());
    daemon = Daemon.start(['--servers', server.url, '--policies', dir, '--interval', '200ms', '--require', 'gateway']);
    gateway = await Beater.start(server.url, 'gateway', 'gw-1', 200);
    await daemon.waitForLog((l) => l.msg === 'connected to the bus');
  });
  it.afterAll(async () => {
    await gateway?.crash();
    await daemon?.stop();
    cleanup?.();
  });

  it('prints the view once, and exits 1 when no sentinel answers', async ({ server }) => {
    const once = await until(
      async () => {
        const r = await Daemon.run(['status', '--servers', server.url]);
        return r.stdout.startsWith('nachos: healthy') && r.stdout.includes('gateway    required  healthy') ? r : undefined;
      },
      5000,
      'a healthy gateway',
    );
    expect(once.code).toBe(0);
    expect(once.stdout).toMatch(/^nachos: healthy/);
    const json = await Daemon.run(['status', '--servers', server.url, '--json', '--component', 'gateway']);
    expect(JSON.parse(json.stdout)).toMatchObject({ components: [{ name: 'gateway', status: 'healthy' }] });
    const nobody = await Daemon.run(['status', '--servers', `nats://127.0.0.1:${await freePort()}`]);
    expect(nobody.code).toBe(1);
    expect(nobody.stderr).toMatch(/bus unreachable/);
  });

  it('--watch redraws in place until interrupted, then restores the screen', async ({ server, defer }) => {
    const watcher = Daemon.start(['status', '--watch', '--refresh', '200ms', '--servers', server.url]);
    defer(() => watcher.kill());
    await until(() => (watcher.stdout.match(/\x1b\[H\x1b\[2J/g) ?? []).length >= 3, 10_000, 'three frames');
    const stopped = await watcher.stop('SIGINT');
    expect(stopped.code).toBe(0);
    expect(watcher.stdout.startsWith('\x1b[?1049h\x1b[?25l')).toBe(true);
    expect(watcher.stdout.endsWith('\x1b[?25h\x1b[?1049l')).toBe(true);
    const frames = watcher.stdout.split('\x1b[H\x1b[2J').slice(1);
    expect(frames.at(-2)).toMatch(/gateway\s+required\s+healthy/);
  });

  it('--watch waits out a bus that is away, and shows it once it comes', async ({ defer, startServer }) => {
    const port = await freePort();
    const watcher = Daemon.start(['status', '--watch', '--refresh', '200ms', '--servers', `nats://127.0.0.1:${port}`]);
    defer(() => watcher.kill());
    await until(() => (watcher.stdout.match(/waiting for the bus at nats:\/\/127\.0\.0\.1:\d+/g) ?? []).length >= 2, 10_000, 'two waiting frames');
    expect(watcher.exit).toBeUndefined();
    await startServer({ port });
    // A bus with no sentinel on it: the frame now says so instead of waiting.
    await until(() => watcher.stdout.split('\x1b[H\x1b[2J').at(-1)?.includes('no sentinel answered'), 10_000, 'a frame from the bus');
    expect((await watcher.stop('SIGINT')).code).toBe(0);
  });

  it('--watch in a real terminal quits on q', async ({ server }) => {
    const session = `sentinel-${process.pid}`;
    const tmux = (...args: string[]) => execFileSync('tmux', args, { encoding: 'utf8' });
    tmux('new-session', '-d', '-s', session, '-x', '120', '-y', '30', `${process.execPath} ${BIN} status --watch --refresh 200ms --servers ${server.url}; echo "exited $?"; sleep 30`);
    try {
      await until(() => /gateway\s+required\s+healthy/.test(tmux('capture-pane', '-p', '-t', session)), 10_000, 'the table on screen');
      tmux('send-keys', '-t', session, 'q');
      await until(() => tmux('capture-pane', '-p', '-t', session).includes('exited 0'), 5000, 'the exit');
    } finally {
      spawnSync('tmux', ['kill-session', '-t', session]);
    }
  });
});

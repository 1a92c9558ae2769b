import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test as base } from 'vitest';
import { Beater } from './beater.js';
import { BusListener } from './bus-listener.js';
import { Daemon } from './daemon.js';
import { NatsServer, type NatsServerOptions } from './nats-server.js';
import { policyText } from './policy-files.js';
import { startSentinel, startSidecar } from './sentinel.js';
import { tempDir } from './temp-dir.js';

/** Flags of an in-process sentinel, keyed as on the command line. */
export type Flags = Record<string, string | boolean | string[]>;
export type Running = Awaited<ReturnType<typeof startSentinel>>;
export type RunningSidecar = Awaited<ReturnType<typeof startSidecar>>;
type Stop = () => unknown;

/**
 * What the integration suites share, as vitest fixtures: a test names what it
 * needs (`async ({ server, dir, sentinel }) => ...`) and gets it made, and
 * undone after it, whether it passed or not. Each thing registers its own
 * undoing where it is made, on one stack (`defer`) that runs in reverse:
 * whatever runs in a directory stops before the directory goes.
 *
 * - `server`: a nats-server of this file's own, on a free port (never the machine's 4222);
 *   `startServer(options)`: one of this test's own, to configure, kill or pause;
 * - `root`: a fresh temporary directory for this test; `dir`: `root/policies`, holding `a.toml` (rule `a1`);
 * - `defer(stop)`: runs `stop` after this test;
 * - `sentinel(flags)`, `sidecarOf(component, flags)`, `daemon(args)`, `listen(subjects)`, `beater(...)`: started on this
 *   file's server and this test's directory unless told otherwise, and stopped after the test.
 */
export const test = base
  .extend('server', { scope: 'file' }, async ({}, { onCleanup }) => {
    const server = await NatsServer.start();
    onCleanup(() => server.stop());
    return server;
  })
  .extend('defer', async ({}, { onCleanup }) => {
    const stops: Stop[] = [];
    onCleanup(async () => {
      for (const stop of stops.splice(0).reverse()) await stop();
    });
    return (stop: Stop): void => {
      stops.push(stop);
    };
  })
  .extend('root', async ({ defer }) => {
    const { dir, cleanup } = tempDir();
    defer(cleanup);
    return dir;
  })
  .extend('dir', async ({ root }) => {
    const dir = path.join(root, 'policies');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'a.toml'), policyText('a1'));
    return dir;
  })
  .extend('startServer', async ({ defer }) => {
    /** A nats-server of this test's own, to configure, kill or pause; stopped after the test. */
    return async (options: NatsServerOptions = {}): Promise<NatsServer> => {
      const server = await NatsServer.start(options);
      defer(() => server.stop());
      return server;
    };
  })
  .extend('sentinel', async ({ server, root, dir, defer }) => {
    /** An in-process sentinel on this file's server and this test's `dir` unless told otherwise; closed after the test. */
    return async (flags: Flags = {}): Promise<Running> => {
      const running = await startSentinel({ servers: server.url, policies: dir, ...flags }, root);
      defer(() => running.close());
      return running;
    };
  })
  .extend('sidecarOf', async ({ server, root, defer }) => {
    /** An in-process sidecar for `component` on this file's server unless told otherwise; closed after the test. */
    return async (component: string, flags: Flags = {}): Promise<RunningSidecar> => {
      const running = await startSidecar({ servers: server.url, component, ...flags }, root);
      defer(() => running.close());
      return running;
    };
  })
  .extend('daemon', async ({ root, defer }) => {
    /** The built executable, run in this test's root, stopped after the test. */
    return (args: string[], env: Record<string, string> = {}): Daemon => {
      const d = Daemon.start(args, env, root);
      defer(() => d.stop());
      return d;
    };
  })
  .extend('listen', async ({ server, defer }) => {
    /** A connection that records every message on `subjects`, closed after the test. */
    return async (subjects: string[], url = server.url): Promise<BusListener> => {
      const listener = await BusListener.start(url, subjects);
      defer(() => listener.close());
      return listener;
    };
  })
  .extend('beater', async ({ server, defer }) => {
    /** Another container's heartbeats; it crashes (goes silent) after the test. */
    return async (component: string, instance: string, intervalMs = 200, url = server.url): Promise<Beater> => {
      const b = await Beater.start(url, component, instance, intervalMs);
      defer(() => b.crash().catch(() => undefined));
      return b;
    };
  });

export const it = test;

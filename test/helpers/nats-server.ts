import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { until } from './until.js';

/**
 * Real nats-server processes for tests, on free loopback ports: never the
 * machine's own server on 4222. Each test suite starts its own.
 */

/** Where the nats-server binary is: NATS_SERVER_BIN, PATH, or Debian's /usr/sbin. */
export function natsServerBinary(): string {
  const candidates = [
    process.env.NATS_SERVER_BIN,
    ...(process.env.PATH ?? '').split(path.delimiter).map((d) => path.join(d, 'nats-server')),
    '/usr/sbin/nats-server',
    '/usr/local/bin/nats-server',
  ].filter((c): c is string => !!c);
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  throw new Error('nats-server not found: install it (apt-get install -y nats-server) or set NATS_SERVER_BIN');
}

/** A free TCP port on 127.0.0.1 (the OS picks; the tiny race until the server binds is acceptable). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface NatsServerOptions {
  port?: number;
  /** Extra nats-server configuration (its own format), written to a file. */
  config?: string;
  args?: string[];
  /** Environment of the server process (its config file can read variables: `password: $X`). */
  env?: Record<string, string>;
  /** JetStream on (`-js`), its store in the server's own temporary directory. */
  jetstream?: boolean;
}

export class NatsServer {
  private child: ChildProcess | undefined;
  private readonly dir = mkdtempSync(path.join(tmpdir(), 'nats-'));
  output = '';

  private constructor(
    readonly port: number,
    private readonly options: NatsServerOptions,
  ) {}

  static async start(options: NatsServerOptions = {}): Promise<NatsServer> {
    const server = new NatsServer(options.port ?? (await freePort()), options);
    try {
      await server.spawn();
    } catch (err) {
      await server.stop();
      throw err;
    }
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** (Re)starts the server on the same port. */
  async spawn(): Promise<void> {
    const args = ['-a', '127.0.0.1', '-p', String(this.port), ...(this.options.jetstream ? ['-js', '-sd', path.join(this.dir, 'jetstream')] : []), ...(this.options.args ?? [])];
    if (this.options.config !== undefined) {
      const file = path.join(this.dir, 'server.conf');
      writeFileSync(file, this.options.config);
      args.push('-c', file);
    }
    const child = spawn(natsServerBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...this.options.env } });
    this.child = child;
    this.output = '';
    const collect = (chunk: Buffer) => {
      this.output += chunk.toString();
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    await until(() => this.output.includes('Server is ready') || !this.running, 10_000, 'nats-server to start');
    if (!this.running) throw new Error(`nats-server exited at start:\n${this.output}`);
  }

  /** Kills the server abruptly (SIGKILL), as a crash would. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /** Freezes the server (SIGSTOP): connections stay open and nothing is answered, as on an overloaded host. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.spawn();
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A cluster of `size` servers on loopback, fully routed. Resolves once every
 * server reports a route to every other (its /routez), so a message published
 * on one node reaches subscribers on all of them.
 */
export class NatsCluster {
  private constructor(
    readonly servers: NatsServer[],
    private readonly monitorPorts: number[],
  ) {}

  static async start(size = 3, options: { jetstream?: boolean } = {}): Promise<NatsCluster> {
    const clusterPorts = await Promise.all(Array.from({ length: size }, () => freePort()));
    const monitorPorts = await Promise.all(Array.from({ length: size }, () => freePort()));
    const routes = clusterPorts.map((p) => `nats://127.0.0.1:${p}`).join(',');
    const started = await Promise.allSettled(
      clusterPorts.map((clusterPort, i) =>
        NatsServer.start({
          jetstream: options.jetstream === true,
          args: [
            // JetStream in a cluster needs each server named.
            '--server_name',
            `n${i + 1}`,
            '-m',
            String(monitorPorts[i]),
            '--cluster_name',
            'sentinel-test',
            '--cluster',
            `nats://127.0.0.1:${clusterPort}`,
            '--routes',
            routes,
          ],
        }),
      ),
    );
    const servers = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const cluster = new NatsCluster(servers, monitorPorts);
    try {
      const failed = started.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
      await cluster.routed();
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  get urls(): string[] {
    return this.servers.map((s) => s.url);
  }

  /** Waits until every running server has a route to every other running server. */
  async routed(timeoutMs = 15_000): Promise<void> {
    const running = this.servers.map((s, i) => ({ s, port: this.monitorPorts[i] })).filter((x) => x.s.running);
    await until(
      async () => {
        const counts = await Promise.all(
          running.map(async ({ port }) => {
            const res = await fetch(`http://127.0.0.1:${port}/routez`);
            return ((await res.json()) as { num_routes: number }).num_routes;
          }),
        );
        return counts.every((n) => n >= running.length - 1);
      },
      timeoutMs,
      'the cluster routes',
      50,
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop()));
  }
}

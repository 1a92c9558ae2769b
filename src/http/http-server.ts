import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { formatListenAddress, type ListenAddress } from '../config/listen-address.js';
import { messageOf } from '../errors.js';
import { hostAllowed } from './host-check.js';

export type Route = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/** A JSON answer with the status code that load balancers and probes read. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}

/**
 * The daemon's small HTTP listener: read-only routes (GET and HEAD), on
 * loopback unless told otherwise. It never takes the daemon down: a port in
 * use is logged, and the daemon runs on without it.
 */
export class HttpServer {
  private server: Server | undefined;
  private readonly routes = new Map<string, Route>();
  /** Requests refused for their Host header (a DNS rebinding attempt, or a name not allowed). */
  refusedHosts = 0;

  constructor(
    private readonly address: ListenAddress,
    private readonly log: Logger,
    /** Host names answered besides localhost, the listen address and IP addresses (see host-check.ts). */
    private readonly allowedHosts: readonly string[] = [],
  ) {}

  route(path: string, handler: Route): this {
    this.routes.set(path, handler);
    return this;
  }

  /** Listens; resolves with the bound address (the real port when 0 was asked), or undefined if it could not bind. */
  start(): Promise<AddressInfo | undefined> {
    const server = nodeHttp().createServer((req, res) => this.handle(req, res));
    // Probes come every few seconds; do not keep idle sockets around.
    server.keepAliveTimeout = 1000;
    server.headersTimeout = 5000;
    server.requestTimeout = 10_000;
    this.server = server;
    return new Promise((resolve) => {
      const failedToStart = (err: Error) => {
        this.log.error(
          { listen: formatListenAddress(this.address), error: messageOf(err) },
          'HTTP listener could not start; /healthz and /readyz are unavailable (see --http)',
        );
        this.server = undefined;
        resolve(undefined);
      };
      server.once('error', failedToStart);
      server.listen(this.address.port, this.address.host, () => {
        // Once listening, an error (EMFILE on accept, say) is logged; the listener stays up, and closable.
        server.off('error', failedToStart);
        server.on('error', (err) => this.log.error({ error: messageOf(err) }, 'HTTP listener error'));
        const bound = server.address() as AddressInfo;
        this.log.info({ listen: formatListenAddress({ host: bound.address, port: bound.port }) }, 'HTTP listener ready');
        resolve(bound);
      });
    });
  }

  close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return Promise.resolve();
    server.closeAllConnections();
    return new Promise((resolve) => server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    if (!hostAllowed(req.headers.host, this.address.host, this.allowedHosts)) {
      this.refusedHosts++;
      sendJson(res, 421, { error: 'this listener does not answer that host name; see --http-allowed-hosts' });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const path = (req.url ?? '/').split('?')[0] as string;
    const route = this.routes.get(path);
    if (!route) {
      sendJson(res, 404, { error: `no route ${path}`, routes: [...this.routes.keys()] });
      return;
    }
    Promise.resolve()
      .then(() => route(req, res))
      .catch((err: unknown) => {
        this.log.error({ path, error: messageOf(err) }, 'HTTP route failed');
        if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
        else res.end();
      });
  }
}

/**
 * node:http, required when a listener starts rather than imported: as an ES
 * module import it costs every start about 20 ms on Node 24 (its module facade
 * loads fetch's undici), and the sidecar listens only when asked to.
 */
function nodeHttp(): typeof import('node:http') {
  return createRequire(import.meta.url)('node:http') as typeof import('node:http');
}

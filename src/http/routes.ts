import type { Registry } from 'prom-client';
import type { PolicyState } from '../policy/snapshot.js';
import type { Clock } from '../clock.js';
import { sendJson, type HttpServer } from './http-server.js';
import type { StatusFeed } from './status-feed.js';
import { CONTENT_SECURITY_POLICY, STATUS_PAGE_HTML, STATUS_PAGE_SCRIPT } from './status-page.js';

/** What the routes read: read-only views, never the daemon itself. */
export interface RoutesSource {
  feed: StatusFeed;
  metrics: Registry;
  clock: Clock;
  /** The heartbeat loop: alive while it turns. */
  heartbeat: { readonly alive: boolean; readonly lastTickAt: number };
  intervalMs: number;
  bus: { readonly connected: boolean; readonly server: string | null; readonly lastError: string | undefined };
  policy: PolicyState;
}

/** The daemon's routes: the status page and its feed, /metrics, /healthz and /readyz. */
export function statusRoutes(http: HttpServer, source: RoutesSource): void {
  const { feed, metrics, clock, heartbeat, bus, policy } = source;
  http
    .route('/', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': CONTENT_SECURITY_POLICY });
      res.end(STATUS_PAGE_HTML);
    })
    .route('/app.js', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'content-security-policy': CONTENT_SECURITY_POLICY });
      res.end(STATUS_PAGE_SCRIPT);
    })
    .route('/status.json', (_req, res) => sendJson(res, 200, feed.document()))
    .route('/events', (req, res) => feed.stream(req, res))
    .route('/metrics', async (_req, res) => {
      const body = await metrics.metrics();
      res.writeHead(200, { 'content-type': metrics.contentType });
      res.end(body);
    })
    .route('/healthz', (_req, res) => {
      const alive = heartbeat.alive;
      sendJson(res, alive ? 200 : 503, { status: alive ? 'alive' : 'stalled', heartbeatLoop: { lastTurnAgoMs: Math.round(clock.now() - heartbeat.lastTickAt) } });
    })
    .route('/readyz', (_req, res) => {
      const ready = bus.connected && policy.inForce !== undefined;
      sendJson(res, ready ? 200 : 503, {
        status: ready ? 'ready' : 'not ready',
        // Why not connected, when it is not: the last attempt's error (never a secret).
        bus: { connected: bus.connected, server: bus.server, ...(bus.connected ? {} : { error: bus.lastError ?? null }) },
        policy: { revision: policy.inForce?.revision ?? null, rejected: policy.lastRejection !== undefined },
      });
    });
}

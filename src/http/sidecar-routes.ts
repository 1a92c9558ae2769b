import type { Clock } from '../clock.js';
import { sendJson, type HttpServer } from './http-server.js';

/** What the sidecar's routes read: read-only views, never the sidecar itself. */
export interface SidecarRoutesSource {
  clock: Clock;
  heartbeat: { readonly alive: boolean; readonly lastTickAt: number };
  bus: { readonly connected: boolean; readonly server: string | null; readonly lastError: string | undefined };
  /** The delivery, when the sidecar delivers: what is on disk, and what was refused. */
  delivery?: () => { dir: string; revision: string | null; failure: string | null; refused: Record<string, number> };
}

/** The sidecar's routes: /healthz (its loop turns) and /readyz (connected, and, when it delivers, holding a set). */
export function sidecarRoutes(http: HttpServer, source: SidecarRoutesSource): void {
  const { clock, heartbeat, bus, delivery } = source;
  http
    .route('/healthz', (_req, res) => {
      const alive = heartbeat.alive;
      sendJson(res, alive ? 200 : 503, { status: alive ? 'alive' : 'stalled', heartbeatLoop: { lastTurnAgoMs: Math.round(clock.now() - heartbeat.lastTickAt) } });
    })
    .route('/readyz', (_req, res) => {
      const delivered = delivery?.();
      const ready = bus.connected && (delivered === undefined || (delivered.revision !== null && delivered.failure === null));
      sendJson(res, ready ? 200 : 503, {
        status: ready ? 'ready' : 'not ready',
        bus: { connected: bus.connected, server: bus.server, ...(bus.connected ? {} : { error: bus.lastError ?? null }) },
        // `policy.revision`, as the daemon's /readyz says it: what `--once --self` prints.
        ...(delivered ? { policy: { revision: delivered.revision }, delivery: delivered } : {}),
      });
    });
}

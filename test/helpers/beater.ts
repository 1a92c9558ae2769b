import { connect, type NatsConnection } from '@nats-io/transport-node';
import { randomUUID } from 'node:crypto';
import type { Heartbeat } from '../../src/health/heartbeat-payload.js';
import { SUBJECTS } from '../../src/protocol/topics.js';

/**
 * Another Nachos container, as far as health goes: it publishes heartbeats
 * every interval until it crashes (stops silently) or leaves (a last
 * `stopping` heartbeat).
 */
export class Beater {
  private timer: NodeJS.Timeout | undefined;
  private seq = 0;
  status: Heartbeat['status'] = 'healthy';
  policyRevision: string | null | undefined;
  sent = 0;

  private constructor(
    readonly nc: NatsConnection,
    readonly component: string,
    readonly instance: string,
    readonly intervalMs: number,
  ) {}

  static async start(url: string, component: string, instance: string, intervalMs = 200): Promise<Beater> {
    const nc = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const beater = new Beater(nc, component, instance, intervalMs);
    // Like the sentinel: beat at once after a reconnect.
    void (async () => {
      for await (const s of nc.status()) if (s.type === 'reconnect') beater.beat();
    })();
    beater.beat();
    beater.timer = setInterval(() => beater.beat(), intervalMs);
    return beater;
  }

  beat(state: Heartbeat['state'] = 'running'): void {
    const payload: Heartbeat = {
      status: this.status,
      component: this.component,
      instance: this.instance,
      intervalMs: this.intervalMs,
      seq: ++this.seq,
      state,
      version: 'test',
      uptime: this.seq,
      ...(this.policyRevision !== undefined ? { policy: { revision: this.policyRevision } } : {}),
    };
    const envelope = { id: randomUUID(), timestamp: new Date().toISOString(), source: this.component, type: 'system.health', payload };
    try {
      this.nc.publish(SUBJECTS.health, JSON.stringify(envelope));
      this.sent++;
    } catch {
      // disconnected: the reconnect beat covers it
    }
  }

  /** Stops beating without a word, as a crash would. */
  async crash(): Promise<void> {
    clearInterval(this.timer);
    await this.nc.close();
  }

  /** Leaves cleanly: a last heartbeat with `state: stopping`. */
  async leave(): Promise<void> {
    clearInterval(this.timer);
    this.beat('stopping');
    await this.nc.flush();
    await this.nc.close();
  }
}

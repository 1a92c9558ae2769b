import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Envelope } from '../../src/protocol/envelope.js';
import { until } from './until.js';

/** Subscribes to subjects on a test server and keeps every decoded envelope. */
export class BusListener {
  readonly messages: { subject: string; envelope: Envelope<Record<string, unknown>>; at: number }[] = [];

  private constructor(readonly nc: NatsConnection) {}

  static async start(url: string, subjects: string[]): Promise<BusListener> {
    const nc = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const listener = new BusListener(nc);
    for (const subject of subjects) {
      nc.subscribe(subject, {
        callback: (_err, msg) => {
          // What is not JSON (a test's own forgery) is not kept: there is no envelope to keep.
          let envelope: Envelope<Record<string, unknown>>;
          try {
            envelope = msg.json();
          } catch {
            return;
          }
          listener.messages.push({ subject: msg.subject, envelope, at: performance.now() });
        },
      });
    }
    await nc.flush();
    return listener;
  }

  on(subject: string) {
    return this.messages.filter((m) => m.subject === subject).map((m) => m.envelope);
  }

  /** Waits until `count` messages have arrived on `subject`; returns them. */
  async waitFor(subject: string, count = 1, timeoutMs = 5000) {
    await until(() => this.on(subject).length >= count, timeoutMs, `${count} message(s) on ${subject}`);
    return this.on(subject);
  }

  close(): Promise<void> {
    return this.nc.close();
  }
}

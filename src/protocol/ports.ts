/**
 * What the parts that talk on the bus need of it, and nothing more: nats.js'
 * own heartbeat takes three methods of the connection rather than the
 * connection, and so do these. The bus connection provides them all; a test
 * can provide them too.
 */

/** Puts messages on the bus. */
export interface Publisher {
  /** Connected now: while not, nothing is published (the next (re)connect says what is in force). */
  readonly connected: boolean;
  /** The largest message the server takes (its max_payload). */
  readonly maxPayload: number;
  /** Throws when the connection refuses (too large, closed). */
  publish(subject: string, data: Uint8Array): void;
}

/** Waits for the server to answer a ping: everything published before is with it. */
export interface Flusher {
  flush(): Promise<void>;
}

/** Subscriptions that survive the connection: made again on every new one. */
export interface Subscriber {
  subscribe(subject: string, callback: (data: Uint8Array) => void): void;
}

/** Sends one request and resolves with the reply's bytes; rejects on an error reply (ADR-32) or a timeout. */
export interface Requester {
  request(subject: string, data: Uint8Array, timeoutMs?: number): Promise<Uint8Array>;
}

import { EventEmitter } from 'node:events';
import { connect, credsAuthenticator, nkeyAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { messageOf } from '../errors.js';
import { redactUrl } from './url-credentials.js';
import type { BusAuth } from '../config/auth-settings.js';
import { authMethod, authOptions, isAuthError } from './auth.js';
import type { Flusher, Publisher, Requester, Subscriber } from '../protocol/ports.js';

/** The server's limit on a message when it has not told us yet (nats-server's default). */
export const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** Wait between reconnect attempts once connected: short, the bus is usually just restarting. */
export const RECONNECT_WAIT = 250; // ms
/** A request's answer is waited for this long unless told otherwise. */
export const REQUEST_TIMEOUT = 2000; // 2 s
/** First wait between attempts while the bus has never been reached; doubles up to the max. */
export const INITIAL_RETRY_WAIT = 250; // ms
export const MAX_RETRY_WAIT = 2000; // 2 s
/** After the bus refused our credentials: nothing will change soon, so try less often. */
export const AUTH_RETRY_WAIT = 5000; // 5 s
/** Log "still waiting for the bus" this often. */
export const WAITING_LOG_EVERY = 10_000; // 10 s

/**
 * Whether the attempt about to wait `nextWait` should say "still waiting": the
 * attempt nearest each WAITING_LOG_EVERY, not the first one past it (attempts
 * are up to 2 s apart, which made "every 10 s" come every 12 s).
 */
export function dueToLog(sinceLastLog: number, nextWait: number): boolean {
  return sinceLastLog + nextWait / 2 >= WAITING_LOG_EVERY;
}
/** Client pings: a dead TCP connection is noticed within about 2 intervals. */
const PING_INTERVAL = 10_000; // 10 s

export interface BusOptions {
  servers: string[];
  /** Connection name, shown by `nats server report connections`. */
  name: string;
  log: Logger;
  /** Authentication and TLS. */
  auth?: BusAuth;
}

export interface BusEvents {
  /** The first connection is up. */
  connect: [server: string];
  /** Connection lost; the client is reconnecting. */
  disconnect: [server: string];
  /** Connection back, possibly to another server of the cluster, possibly a new connection. */
  reconnect: [server: string];
  /** The server refused a publish or a subscription on a subject (its permissions). */
  permissionDenied: [denial: PermissionDenial];
  /** `close` was called: no connection will come. */
  closed: [];
}

export interface PermissionDenial {
  operation: 'publish' | 'subscription';
  subject: string;
  message: string;
}

/**
 * The connection to the bus, kept forever. The bus must start first, but a
 * daemon started before it does not crash-loop: it retries with a clear log
 * line until the bus answers. Once connected, the client reconnects forever
 * with short waits, and every transition is logged and emitted. A bus that
 * refuses our credentials is said so, plainly, at every attempt.
 */
export class BusConnection extends EventEmitter<BusEvents> implements Publisher, Flusher, Subscriber, Requester {
  nc: NatsConnection | undefined;
  /** Subscriptions made through `subscribe`, made again on every new connection. */
  private readonly subscriptions: { subject: string; callback: (data: Uint8Array) => void }[] = [];
  private closing: Promise<void> | undefined;
  private started: Promise<NatsConnection | undefined> | undefined;
  private wake: (() => void) | undefined;
  private everConnected = false;
  connected = false;
  reconnects = 0;
  /** Why the last attempt failed, for /readyz (never holds a secret). */
  lastError: string | undefined;

  constructor(private readonly options: BusOptions) {
    super();
  }

  /** The servers, without any credentials in their URLs, for logs and messages. */
  get safeServers(): string[] {
    return this.options.servers.map(redactUrl);
  }

  /** The server connected to now, without credentials; null while disconnected. */
  get server(): string | null {
    return this.nc && this.connected ? redactUrl(this.nc.getServer()) : null;
  }

  get maxPayload(): number {
    return this.nc?.info?.max_payload ?? DEFAULT_MAX_PAYLOAD;
  }

  publish(subject: string, data: Uint8Array): void {
    if (!this.nc || !this.connected) throw new Error('not connected to the bus');
    this.nc.publish(subject, data);
  }

  /** The connection, once there is one (now, or at the next connect); rejects when closed first. */
  whenConnected(): Promise<NatsConnection> {
    if (this.nc && this.connected) return Promise.resolve(this.nc);
    if (this.closing) return Promise.reject(new Error('the bus connection is closed'));
    return new Promise((resolve, reject) => {
      const done = () => {
        this.off('connect', done);
        this.off('reconnect', done);
        this.off('closed', closed);
        if (this.nc && this.connected) resolve(this.nc);
        else reject(new Error('the bus connection is closed'));
      };
      const closed = () => done();
      this.on('connect', done);
      this.on('reconnect', done);
      this.on('closed', closed);
    });
  }

  async flush(): Promise<void> {
    if (!this.nc || !this.connected) throw new Error('not connected to the bus');
    await this.nc.flush();
  }

  async request(subject: string, data: Uint8Array, timeoutMs = REQUEST_TIMEOUT): Promise<Uint8Array> {
    if (!this.nc || !this.connected) throw new Error('not connected to the bus');
    const reply = await this.nc.request(subject, data, { timeout: timeoutMs });
    const error = reply.headers?.get('Nats-Service-Error');
    if (error) throw new Error(`${subject}: ${error}`);
    return reply.data;
  }

  subscribe(subject: string, callback: (data: Uint8Array) => void): void {
    this.subscriptions.push({ subject, callback });
    if (this.nc && !this.nc.isClosed()) this.attach(this.nc, subject, callback);
  }

  private attach(nc: NatsConnection, subject: string, callback: (data: Uint8Array) => void): void {
    nc.subscribe(subject, {
      callback: (err, msg) => {
        if (!err) callback(msg.data);
      },
    });
  }

  /** Connects, retrying until the bus answers. Resolves undefined if closed first. */
  start(): Promise<NatsConnection | undefined> {
    this.started ??= this.connectLoop();
    return this.started;
  }

  private async connectLoop(): Promise<NatsConnection | undefined> {
    const { log } = this.options;
    const auth = this.options.auth ?? {};
    let wait = INITIAL_RETRY_WAIT;
    let attempts = 0;
    let lastLogged = -Infinity;
    const since = Date.now();
    while (!this.closing) {
      attempts++;
      let nc: NatsConnection;
      try {
        nc = await connect({
          ...authOptions(this.options.servers, auth, { nkeyAuthenticator, credsAuthenticator }),
          name: this.options.name,
          maxReconnectAttempts: -1,
          reconnectTimeWait: RECONNECT_WAIT,
          reconnectJitter: 100,
          pingInterval: PING_INTERVAL,
        });
      } catch (err) {
        const now = Date.now();
        const refused = isAuthError(err);
        this.lastError = refused ? `the bus refused the credentials (${messageOf(err)})` : messageOf(err);
        if (refused) {
          // Not a bus that is still starting: say so every time, at error level.
          log.error(
            { servers: this.safeServers, auth: authMethod(auth, this.options.servers), attempts, error: messageOf(err) },
            `the bus refused our credentials; check them (retrying every ${AUTH_RETRY_WAIT / 1000}s)`,
          );
        } else if (dueToLog(now - lastLogged, wait)) {
          lastLogged = now;
          log.warn(
            { servers: this.safeServers, attempts, waitingFor: `${Math.round((now - since) / 1000)}s`, error: messageOf(err) },
            'bus not reachable yet; retrying (the bus must start first)',
          );
        }
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          setTimeout(resolve, refused ? AUTH_RETRY_WAIT : wait).unref();
        });
        wait = Math.min(wait * 2, MAX_RETRY_WAIT);
        continue;
      }
      if (this.closing) {
        await nc.close();
        return undefined;
      }
      this.nc = nc;
      this.connected = true;
      this.lastError = undefined;
      // nats.js re-subscribes after a reconnect itself; a new connection needs them anew.
      for (const { subject, callback } of this.subscriptions) this.attach(nc, subject, callback);
      this.watchStatus(nc);
      const server = nc.getServer();
      log.info({ server: redactUrl(server), attempts, auth: authMethod(auth, this.options.servers) }, 'connected to the bus');
      if (this.everConnected) {
        this.reconnects++;
        this.notify('reconnect', server);
      } else {
        this.everConnected = true;
        this.notify('connect', server);
      }
      return nc;
    }
    return undefined;
  }

  /**
   * Tells the listeners. One that throws (a subscribe racing a closing
   * connection, say) is logged; it does not cost the connection, nor start a second one.
   */
  private notify(event: 'connect' | 'reconnect' | 'disconnect', server: string): void {
    try {
      this.emit(event, server);
    } catch (err) {
      this.options.log.error({ err, event }, 'handling a bus event failed');
    }
  }

  private watchStatus(nc: NatsConnection): void {
    const { log } = this.options;
    void (async () => {
      for await (const s of nc.status()) {
        switch (s.type) {
          case 'disconnect':
            this.connected = false;
            log.warn({ server: redactUrl(s.server) }, 'disconnected from the bus; reconnecting');
            this.notify('disconnect', s.server);
            break;
          case 'reconnect':
            this.connected = true;
            this.reconnects++;
            log.info({ server: redactUrl(s.server) }, 'reconnected to the bus');
            this.notify('reconnect', s.server);
            break;
          case 'error':
            if (s.error?.name === 'PermissionViolationError') {
              const { operation, subject } = s.error as Error & { operation?: string; subject?: string };
              const denial: PermissionDenial = { operation: operation === 'subscription' ? 'subscription' : 'publish', subject: subject ?? '', message: messageOf(s.error) };
              log.error({ operation: denial.operation, subject: denial.subject }, `the bus refused a ${denial.operation} on ${denial.subject}; check the server's permissions for this user`);
              this.emit('permissionDenied', denial);
            } else if (isAuthError(s.error)) {
              this.lastError = `the bus refused the credentials (${messageOf(s.error)})`;
              log.error({ error: messageOf(s.error) }, 'the bus refused our credentials while reconnecting; check them');
            } else {
              log.error({ error: messageOf(s.error) }, 'bus error');
            }
            break;
          case 'ldm':
            log.info({ server: redactUrl(s.server) }, 'bus server entering lame duck mode; will move to another server');
            break;
          case 'slowConsumer':
            log.warn({ subject: s.sub.getSubject(), pending: s.pending }, 'slow consumer: messages are being dropped');
            break;
          default:
            break;
        }
      }
      // The client gave up (it does after the credentials are refused twice in a row): start over.
      if (!this.closing && this.nc === nc) {
        this.connected = false;
        log.error({ error: this.lastError ?? null }, 'the bus connection closed; connecting again');
        this.notify('disconnect', nc.getServer());
        this.started = this.connectLoop();
      }
    })().catch((err: unknown) => log.error({ err }, 'bus status handling failed'));
  }

  /** Drains (finishing what is in flight) within `timeoutMs`, then closes. Idempotent. */
  close(timeoutMs = 1500): Promise<void> {
    this.closing ??= (async () => {
      this.wake?.();
      this.emit('closed');
      const nc = this.nc;
      if (!nc || nc.isClosed()) return;
      this.connected = false;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      const drained = nc.drain().then(
        () => 'drained' as const,
        () => 'failed' as const,
      );
      const outcome = await Promise.race([drained, timeout]);
      clearTimeout(timer);
      if (outcome !== 'drained') await nc.close().catch(() => undefined);
    })();
    return this.closing;
  }
}

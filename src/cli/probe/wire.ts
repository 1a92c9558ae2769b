import { readFileSync } from 'node:fs';
import { connect as tcpConnect, isIP, type Socket } from 'node:net';
import type { ConnectionOptions } from '@nats-io/transport-node';
import { DEFAULT_SERVERS } from '../../config/listen-address.js';

/**
 * The probe's own NATS protocol path: the few lines `--once` needs (INFO,
 * CONNECT with the same authentication the client would send, PING, SUB, one
 * PUB with a reply inbox, the MSG or HMSG back), over node:net, and node:tls
 * only when the server or the settings want TLS. Loading the NATS client takes
 * the probe 30 ms or more on Node 24 (it loads TLS, crypto and its own
 * modules whatever the bus needs); this takes none of that.
 *
 * It takes the options `authOptions` builds for the client (servers without
 * credentials, user and password, token, TLS files) and, for an NKey or a
 * credentials file, the file itself: the nonce is signed with node:crypto,
 * loaded only then. The suite runs every method and TLS against real
 * nats-servers through this path and through the client, and compares.
 */

export interface WireOptions {
  connection: Partial<ConnectionOptions>;
  /** An NKey seed file (nkey) or a credentials file with a user JWT and seed (creds). */
  keyFile?: { kind: 'nkey' | 'creds'; path: string };
  name: string;
  timeoutMs: number;
  /** Shuffles the servers, as the client does unless told not to (tests keep their order). */
  random?: () => number;
}

/** An answer: as much of the client's Msg as the probe reads. */
export interface WireMessage {
  data: Uint8Array;
  headers?: { get(key: string): string };
  json<T>(): T;
  string(): string;
}

/** The NATS error a server sends (`-ERR 'Authorization Violation'`), with its words. */
export class WireError extends Error {}

const CRLF = '\r\n';
/** A protocol line (INFO is the longest), and a message: longer is not read. */
const MAX_LINE = 1024 * 1024;
const MAX_PAYLOAD = 64 * 1024 * 1024;

interface Server {
  host: string;
  port: number;
  tls: boolean;
}

function serverOf(text: string): Server {
  const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `nats://${text}`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return { host, port: url.port === '' ? 4222 : Number(url.port), tls: url.protocol === 'tls:' };
}

/**
 * Connects to the first server that takes us, trying them in a random order
 * as the NATS client does: probes from every container spread over the
 * cluster, and a server that is down costs only the probes that try it first.
 */
export async function wireConnect(options: WireOptions): Promise<WireConnection> {
  const given = (options.connection.servers ?? []) as string[];
  const servers = given.length > 0 ? [...given] : [DEFAULT_SERVERS];
  const random = options.random ?? Math.random;
  for (let i = servers.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [servers[i], servers[j]] = [servers[j] as string, servers[i] as string];
  }
  let last: unknown = new Error('no server given');
  for (const text of servers) {
    const server = serverOf(text);
    const connection = new WireConnection(options);
    try {
      await connection.open(server);
      return connection;
    } catch (err) {
      connection.destroy();
      // The bus refused us: another server of the same cluster would too.
      if (err instanceof WireError) throw err;
      last = err;
    }
  }
  throw last;
}

export class WireConnection {
  private socket: Socket | undefined;
  private buffer: Buffer = Buffer.alloc(0);
  private waiting: ((line: string | Error) => void) | undefined;
  private lines: string[] = [];
  private failure: Error | undefined;
  private readonly inbox = `_INBOX.${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
  private sid = 0;
  private messages = new Map<number, { take: (m: WireMessage & { status: string }) => void; fail: (err: Error) => void }>();

  constructor(private readonly options: WireOptions) {}

  async open(server: Server): Promise<void> {
    const { timeoutMs } = this.options;
    const plain = await new Promise<Socket>((resolve, reject) => {
      const socket = tcpConnect({ host: server.host, port: server.port });
      const timer = setTimeout(() => socket.destroy(new Error(`timeout connecting to ${server.host}:${server.port}`)), timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(socket);
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        // As the NATS client words it (and the daemon's log line): nothing listens there.
        reject(err.code === 'ECONNREFUSED' ? new Error('connection refused') : err);
      });
    });
    this.listen(plain);
    // The whole handshake within the timeout: a server that accepts and says nothing is given up on.
    const handshake = setTimeout(() => this.socket?.destroy(new Error(`timeout: ${server.host}:${server.port} did not answer as a NATS server`)), timeoutMs);
    try {
      await this.handshake(server, plain);
    } finally {
      clearTimeout(handshake);
    }
  }

  private async handshake(server: Server, plain: Socket): Promise<void> {
    const info = JSON.parse(this.expect(await this.line(), 'INFO ').slice(5)) as { tls_required?: boolean; tls_available?: boolean; nonce?: string };
    const tlsWanted = server.tls || this.options.connection.tls !== undefined;
    if (tlsWanted && !info.tls_required && !info.tls_available) throw new Error(`${server.host}:${server.port} does not offer TLS`);
    if (info.tls_required || tlsWanted) this.listen(await this.upgrade(plain, server));
    const connect = { verbose: false, pedantic: false, tls_required: Boolean(info.tls_required || tlsWanted), name: this.options.name, lang: 'nachos-sentinel-probe', version: '1', protocol: 1, headers: true, no_responders: true, ...(await this.credentials(info.nonce)) };
    this.write(`CONNECT ${JSON.stringify(connect)}${CRLF}PING${CRLF}`);
    this.expect(await this.line(), 'PONG');
  }

  /** The same CONNECT fields the client sends for each way of authenticating. */
  private async credentials(nonce: string | undefined): Promise<Record<string, string>> {
    const { connection, keyFile } = this.options;
    if (keyFile) {
      const text = readFileSync(keyFile.path, 'utf8');
      const { SigningKey } = await import('../../trust/ed25519.js');
      const seed = keyFile.kind === 'nkey' ? text.trim() : credsPart(text, 'seed');
      const key = new SigningKey(seed);
      const sig = nonce === undefined ? undefined : key.sign(Buffer.from(nonce)).toString('base64url');
      return { nkey: key.publicKey, ...(sig ? { sig } : {}), ...(keyFile.kind === 'creds' ? { jwt: credsPart(text, 'jwt') } : {}) };
    }
    if (connection.token) return { auth_token: connection.token };
    if (connection.user) return { user: connection.user, pass: connection.pass ?? '' };
    return {};
  }

  private async upgrade(socket: Socket, server: Server): Promise<Socket> {
    const { connect: connectTLS } = await import('node:tls');
    const files = this.options.connection.tls ?? {};
    const read = (file: string | undefined) => (file ? readFileSync(file) : undefined);
    const { caFile, certFile, keyFile } = files as { caFile?: string; certFile?: string; keyFile?: string };
    socket.removeAllListeners('data');
    return new Promise((resolve, reject) => {
      const secure = connectTLS({
        socket,
        ...(caFile ? { ca: read(caFile) } : {}),
        ...(certFile ? { cert: read(certFile) } : {}),
        ...(keyFile ? { key: read(keyFile) } : {}),
        ...(isIP(server.host) ? {} : { servername: server.host }),
      });
      secure.once('secureConnect', () => resolve(secure));
      secure.once('error', reject);
    });
  }

  private listen(socket: Socket): void {
    this.socket = socket;
    this.buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => this.take(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.waiting?.(err);
    this.waiting = undefined;
    for (const { fail } of this.messages.values()) fail(err);
  }

  private write(text: string): void {
    this.socket?.write(text);
  }

  /** Reads protocol lines; a MSG or HMSG waits for its payload, which goes to its subscription. */
  private take(chunk: Buffer): void {
    this.buffer = this.buffer.byteLength === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const eol = this.buffer.indexOf(CRLF);
      if (eol < 0) {
        if (this.buffer.byteLength > MAX_LINE) this.socket?.destroy(new Error('the server sent more than the probe reads'));
        return;
      }
      const line = this.buffer.subarray(0, eol).toString('utf8');
      const [op = '', , sid, ...rest] = line.split(' ');
      if (op === 'MSG' || op === 'HMSG') {
        const total = Number(rest.at(-1));
        const headerBytes = op === 'HMSG' ? Number(rest.at(-2)) : 0;
        if (!Number.isSafeInteger(total) || total < 0 || total > MAX_PAYLOAD || !(headerBytes >= 0 && headerBytes <= total)) {
          this.socket?.destroy(new Error('the server sent more than the probe reads'));
          return;
        }
        if (this.buffer.byteLength < eol + 2 + total + 2) return;
        const payload = this.buffer.subarray(eol + 2, eol + 2 + total);
        this.buffer = this.buffer.subarray(eol + 2 + total + 2);
        this.messages.get(Number(sid))?.take(message(payload.subarray(0, headerBytes).toString('utf8'), payload.subarray(headerBytes)));
        continue;
      }
      this.buffer = this.buffer.subarray(eol + 2);
      if (op === 'PING') this.write(`PONG${CRLF}`);
      else if (op === '+OK') continue;
      else this.deliver(line);
    }
  }

  private deliver(line: string): void {
    // Once connected, an -ERR is about a request (a permissions violation): said to it, as the client says it.
    if (line.startsWith('-ERR') && !this.waiting && this.messages.size > 0) {
      const err = new WireError(line.slice(4).trim().replace(/^'(.*)'$/, '$1'));
      for (const { fail } of this.messages.values()) fail(err);
      return;
    }
    if (this.waiting) {
      const waiting = this.waiting;
      this.waiting = undefined;
      waiting(line);
    } else this.lines.push(line);
  }

  private line(): Promise<string> {
    const next = this.lines.shift();
    if (next !== undefined) return Promise.resolve(next);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting = (line) => (line instanceof Error ? reject(line) : resolve(line));
    });
  }

  private expect(line: string, start: string): string {
    if (line.startsWith('-ERR')) throw new WireError(line.slice(4).trim().replace(/^'(.*)'$/, '$1'));
    if (!line.startsWith(start)) throw new Error(`unexpected answer from the server: ${line.slice(0, 80)}`);
    return line;
  }

  /** One request: a subscription on an inbox of our own, one publish, the first answer (or none within the timeout). */
  request(subject: string, data: string, { timeout }: { timeout: number }): Promise<WireMessage> {
    const sid = ++this.sid;
    const reply = `${this.inbox}.${sid}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error('timeout')), timeout);
      const fail = (err: Error) => {
        clearTimeout(timer);
        this.messages.delete(sid);
        reject(err);
      };
      const take = (m: WireMessage & { status: string }) => {
        clearTimeout(timer);
        this.messages.delete(sid);
        this.write(`UNSUB ${sid}${CRLF}`);
        // The server's own 503 with no body: nobody subscribes to the subject.
        if (m.data.byteLength === 0 && /^NATS\/1\.0 503\b/.test(m.status)) reject(new Error('503 no responders'));
        else resolve(m);
      };
      this.messages.set(sid, { take, fail });
      const bytes = Buffer.byteLength(data);
      this.write(`SUB ${reply} ${sid}${CRLF}PUB ${subject} ${reply} ${bytes}${CRLF}${data}${CRLF}`);
    });
  }

  destroy(): void {
    this.socket?.destroy();
  }

  async close(): Promise<void> {
    this.socket?.end();
    this.socket?.destroy();
  }
}

function message(head: string, data: Buffer): WireMessage & { status: string } {
  const lines = head.split(CRLF);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return {
    status: lines[0] ?? '',
    data,
    ...(head ? { headers: { get: (key: string) => headers.get(key.toLowerCase()) ?? '' } } : {}),
    json: <T>() => JSON.parse(data.toString('utf8')) as T,
    string: () => data.toString('utf8'),
  };
}

/** The user JWT or seed of a credentials file, between its `-----BEGIN ...-----` and `------END ...------` lines. */
function credsPart(text: string, which: 'jwt' | 'seed'): string {
  const pattern = which === 'jwt' ? /-{3,}BEGIN NATS USER JWT-{3,}\s*([^\s-][^\n]*)\s*-{3,}END/ : /-{3,}BEGIN USER NKEY SEED-{3,}\s*(S[A-Z2-7]+)\s*-{3,}END/;
  const found = pattern.exec(text)?.[1]?.trim();
  if (!found) throw new Error(`the credentials file has no ${which === 'jwt' ? 'user JWT' : 'user seed'}`);
  return found;
}

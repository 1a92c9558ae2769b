import { createServer, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { wireConnect } from '../../src/cli/probe/wire.js';

/**
 * The probe's own protocol path against servers that are not what they should be (the real
 * nats-server, with every way of authenticating and TLS, is in test/integration/secure.test.ts,
 * where each answer is compared with the NATS client's).
 */
const servers: ReturnType<typeof createServer>[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

async function fakeServer(onConnection: (socket: Socket) => void): Promise<string> {
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    onConnection(socket);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `nats://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const connect = (url: string, timeoutMs = 2000) => wireConnect({ connection: { servers: [url] }, name: 'test', timeoutMs });
const INFO = 'INFO {"server_id":"fake","version":"2.9.10","headers":true,"max_payload":1048576}\r\n';

describe("the probe's protocol path against servers that misbehave", () => {
  it('says what a server that is not NATS answered, and what a NATS server refused', async () => {
    const http = await fakeServer((s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    await expect(connect(http)).rejects.toThrow(/unexpected answer from the server: HTTP\/1\.1 400/);
    const refusing = await fakeServer((s) => {
      s.write(INFO);
      s.once('data', () => s.end("-ERR 'Authorization Violation'\r\n"));
    });
    await expect(connect(refusing)).rejects.toThrow(/^Authorization Violation$/);
  });

  it('stops reading a server that sends endless data, and never waits past its timeout for one that says nothing', async () => {
    const endless = await fakeServer((s) => {
      const chunk = Buffer.alloc(64 * 1024, 'x');
      const pump = () => {
        while (!s.destroyed && s.write(chunk));
        if (!s.destroyed) s.once('drain', pump);
      };
      pump();
    });
    await expect(connect(endless)).rejects.toThrow(/more than the probe reads|connection closed/);
    const silent = await fakeServer(() => undefined);
    await expect(connect(silent, 300)).rejects.toThrow(/timeout: 127\.0\.0\.1:\d+ did not answer as a NATS server/);
  });

  it('answers a request with the reply, its headers, and no responders as the client says it', async () => {
    const url = await fakeServer((s) => {
      s.write(INFO);
      let buffer = '';
      s.on('data', (d: Buffer) => {
        buffer += d.toString();
        if (buffer.includes('PING\r\n') && !buffer.includes('#ponged')) {
          buffer += '#ponged';
          s.write('PONG\r\n');
        }
        const pub = /PUB (\S+) (\S+) (\d+)\r\n/.exec(buffer);
        if (!pub) return;
        buffer = '';
        const [, subject, reply] = pub;
        const sid = /SUB \S+ (\d+)/.exec(d.toString())?.[1] ?? '1';
        if (subject === 'nobody') s.write(`HMSG ${reply} ${sid} 16 16\r\nNATS/1.0 503\r\n\r\n\r\n`);
        else {
          const head = 'NATS/1.0\r\nNats-Service-Error-Code: 503\r\n\r\n';
          const body = '{"a":1}';
          // Split across writes, as TCP may deliver it.
          const whole = `HMSG ${reply} ${sid} ${head.length} ${head.length + body.length}\r\n${head}${body}\r\n`;
          s.write(whole.slice(0, 10));
          setTimeout(() => s.write(whole.slice(10)), 20);
        }
      });
    });
    const conn = await connect(url);
    const answer = await conn.request('status', '{}', { timeout: 1000 });
    expect(answer.json()).toEqual({ a: 1 });
    expect(answer.headers?.get('Nats-Service-Error-Code')).toBe('503');
    await expect(conn.request('nobody', '{}', { timeout: 1000 })).rejects.toThrow(/no responders/);
    await conn.close();
  });

  it('tries the servers in a random order, as the client does, and goes on past one that says nothing', async () => {
    const firsts = new Map<string, number>();
    const nats = async (name: string) => {
      const url = await fakeServer((s) => {
        firsts.set(name, (firsts.get(name) ?? 0) + 1);
        s.write(INFO);
        s.on('data', (d: Buffer) => {
          if (d.toString().includes('PING\r\n')) s.write('PONG\r\n');
        });
      });
      return url;
    };
    const a = await nats('a');
    const b = await nats('b');
    // Each connect reaches one server (the first it tries answers): over 40, both were tried first.
    for (let i = 0; i < 40; i++) await (await wireConnect({ connection: { servers: [a, b] }, name: 'test', timeoutMs: 2000 })).close();
    expect((firsts.get('a') ?? 0) + (firsts.get('b') ?? 0)).toBe(40);
    expect(firsts.get('a')).toBeGreaterThan(0);
    expect(firsts.get('b')).toBeGreaterThan(0);
    // In the order given (a random that never swaps): past a server that accepts and says nothing, after its timeout.
    const silent = await fakeServer(() => undefined);
    firsts.clear();
    const t0 = performance.now();
    const conn = await wireConnect({ connection: { servers: [silent, a] }, name: 'test', timeoutMs: 300, random: () => 0.999 });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(250);
    expect(firsts.get('a')).toBe(1);
    await conn.close();
  });
});

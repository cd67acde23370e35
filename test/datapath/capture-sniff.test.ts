// Sniffing on real loopback sockets: slow clients, server-first protocols,
// early ends, and the hand-off of the sniffed bytes to Node's HTTP/1 and
// HTTP/2 servers (the bytes must reach the parser exactly once, in order).
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import { handOff, sniff, type Sniffed } from '../../sidecar/capture/sniff.ts';

interface Harness {
  port: number;
  next(): Promise<{ socket: net.Socket; sniffed: Sniffed }>;
  close(): Promise<void>;
}

async function sniffingServer(timeoutMs: number): Promise<Harness> {
  const waiting: Array<(v: { socket: net.Socket; sniffed: Sniffed }) => void> = [];
  const ready: Array<{ socket: net.Socket; sniffed: Sniffed }> = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    void sniff(socket, timeoutMs).then((sniffed) => {
      const w = waiting.shift();
      if (w) w({ socket, sniffed });
      else ready.push({ socket, sniffed });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    next: () => new Promise((resolve) => (ready.length > 0 ? resolve(ready.shift()!) : waiting.push(resolve))),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}


describe('capture: sniffing live connections', function () {
  this.timeout(20_000);
  let h: Harness;
  before(async () => (h = await sniffingServer(300)));
  after(() => h.close());

  it('waits for a request line that arrives a byte at a time', async () => {
    const c = net.connect(h.port, '127.0.0.1');
    c.setNoDelay(true);
    for (const ch of 'GET /slow HTTP/1.1\r\n') {
      c.write(ch);
      await sleep(2);
    }
    const { sniffed } = await h.next();
    assert.equal(sniffed.protocol, 'http1');
    assert.equal(sniffed.settledBy, undefined);
    c.destroy();
  });

  it('settles a silent client (server-first protocol) as raw at the timeout, without losing a byte', async () => {
    const t0 = performance.now();
    const c = net.connect(h.port, '127.0.0.1');
    const { sniffed } = await h.next();
    assert.deepEqual({ protocol: sniffed.protocol, settledBy: sniffed.settledBy, bytes: sniffed.head.length }, { protocol: 'raw', settledBy: 'timeout', bytes: 0 });
    assert.ok(performance.now() - t0 >= 290, 'decided before the timeout');
    c.destroy();
  });

  it('settles a short read followed by silence as raw, keeping the bytes', async () => {
    const c = net.connect(h.port, '127.0.0.1', () => c.write('GET /par'));
    const { sniffed } = await h.next();
    assert.equal(sniffed.protocol, 'raw');
    assert.equal(sniffed.settledBy, 'timeout');
    assert.equal(sniffed.head.toString(), 'GET /par');
    c.destroy();
  });

  it('settles a client that ends before a verdict as raw and says the stream ended', async () => {
    const c = net.connect(h.port, '127.0.0.1', () => c.end('GE'));
    const { sniffed } = await h.next();
    assert.deepEqual({ protocol: sniffed.protocol, settledBy: sniffed.settledBy, ended: sniffed.ended, head: sniffed.head.toString() }, { protocol: 'raw', settledBy: 'end', ended: true, head: 'GE' });
    c.destroy();
  });

  it('names a TLS ClientHello without completing (or breaking) the handshake', async () => {
    const c = tls.connect({ port: h.port, host: '127.0.0.1', servername: 'app.test', rejectUnauthorized: false });
    c.on('error', () => undefined);
    const { socket, sniffed } = await h.next();
    assert.equal(sniffed.protocol, 'tls');
    assert.equal(sniffed.head[0], 0x16);
    socket.destroy();
    c.destroy();
  });

  it('hands sniffed HTTP/1.1 bytes to an http.Server: pipelined requests all answered, in order', async () => {
    const server = http.createServer((req, res) => res.end(`got ${req.url}`));
    const c = net.connect(h.port, '127.0.0.1', () => c.write('GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n'));
    let reply = '';
    c.setEncoding('utf8').on('data', (d: string) => (reply += d));
    const { socket, sniffed } = await h.next();
    assert.equal(sniffed.protocol, 'http1');
    handOff(server, socket, sniffed);
    while (!reply.includes('got /b')) await sleep(5);
    assert.ok(reply.indexOf('got /a') < reply.indexOf('got /b'), reply);
    c.destroy();
    server.close();
  });

  it('hands a sniffed h2c connection to an http2 server: streams work', async () => {
    const server = http2.createServer();
    server.on('stream', (stream, headers) => {
      stream.respond({ ':status': 200 });
      stream.end(`h2 ${headers[':path']}`);
    });
    const client = http2.connect(`http://127.0.0.1:${h.port}`);
    const get = (path: string) =>
      new Promise<string>((resolve, reject) => {
        const req = client.request({ ':path': path });
        let body = '';
        req.setEncoding('utf8').on('data', (d: string) => (body += d));
        req.on('end', () => resolve(body));
        req.on('error', reject);
      });
    const first = get('/one');
    const { socket, sniffed } = await h.next();
    assert.equal(sniffed.protocol, 'h2');
    handOff(server, socket, sniffed);
    assert.deepEqual(await Promise.all([first, get('/two'), get('/three')]), ['h2 /one', 'h2 /two', 'h2 /three']);
    client.close();
    server.close();
  });

  it('refuses to hand off a stream that already ended', () => {
    const s = new net.Socket();
    assert.throws(() => handOff(http.createServer(), s, { protocol: 'raw', head: Buffer.from('x'), ended: true, settledBy: 'end' }), /already ended/);
    s.destroy();
  });
});

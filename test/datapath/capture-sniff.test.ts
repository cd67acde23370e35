// Sniffing on real connections through a faultline-proxy in a pod's network
// namespace (PodProxy: the CLI under test, FAULTLINE_CLI, capturing as in a
// pod): slow clients, server-first protocols, early ends, and the hand-off of
// the sniffed bytes to the proxy's HTTP/1 and HTTP/2 paths (the bytes must
// reach the parser, or the app on the raw path, exactly once, in order).
//
// The proxy's verdict per connection is read from outside it: the path it took
// (GET /stats connections: raw, http, h2), the protocols its inbound port
// showed (GET /stats capture.ports), what the app received, and when. Each
// test serves its own app on its own port of the pod, so a port's protocols
// are that test's connection alone.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import { DEFAULT_SNIFF_TIMEOUT_MS, handOff } from '../../sidecar/capture/sniff.ts';
import { httpFault } from '../support/sidecar-plans.ts';
import { PodProxy, type ProxyStats } from '../support/netns-proxy.ts';
import { waitFor } from '../support/sidecar-harness.ts';

/** The proxy's sniff timeout: `faultline sidecar` runs with the default. */
const TIMEOUT_MS = DEFAULT_SNIFF_TIMEOUT_MS;

/** One connection as the app in the pod saw it. */
interface Accepted {
  socket: net.Socket;
  /** performance.now() when the app accepted it: the proxy dials the app once its verdict is in. */
  acceptedAt: number;
  data: Buffer;
  ended: boolean;
}

interface Recorder {
  port: number;
  next(): Promise<Accepted>;
}

describe('capture: sniffing live connections', function () {
  this.timeout(20_000);
  let px: PodProxy;
  const closers: Array<() => Promise<unknown>> = [];

  before(async () => {
    px = await PodProxy.start();
    // Only ports with HTTP or gRPC faults are sniffed: this one covers every inbound port and matches no request.
    await px.apply({ http: [httpFault({ name: 'sniff-all', match: { path: { exact: '/never' } }, abort: { status: 500, percent: 100 } })] });
  });
  after(() => px?.close());
  afterEach(async () => {
    // Last in, first out: clients, then the app's connections, then its server.
    for (const close of closers.splice(0).reverse()) await close();
  });

  /** Serves `server` on a fresh port of the pod; closed after the test. */
  async function inPod(server: net.Server): Promise<number> {
    const port = await px.listen(server);
    closers.push(() => new Promise((r) => server.close(r)));
    return port;
  }

  /** A raw TCP app in the pod that records each connection (and greets first, for a server-first protocol). */
  async function recorder(greeting?: string): Promise<Recorder> {
    const waiting: Array<(a: Accepted) => void> = [];
    const ready: Accepted[] = [];
    const sockets = new Set<net.Socket>();
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      const a: Accepted = { socket, acceptedAt: performance.now(), data: Buffer.alloc(0), ended: false };
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
      socket.on('data', (d: Buffer) => (a.data = Buffer.concat([a.data, d])));
      socket.on('end', () => (a.ended = true));
      if (greeting) socket.write(greeting);
      const w = waiting.shift();
      if (w) w(a);
      else ready.push(a);
    });
    const port = await inPod(server);
    closers.push(async () => {
      for (const s of sockets) s.destroy();
    });
    return {
      port,
      next: () => new Promise((resolve) => (ready.length > 0 ? resolve(ready.shift()!) : waiting.push(resolve))),
    };
  }

  /** A client socket to the pod's `port`, through the proxy; destroyed after the test. */
  function connect(port: number, onConnect?: () => void): net.Socket {
    const c = net.connect({ ...px.endpoint(port), allowHalfOpen: true }, onConnect);
    c.on('error', () => undefined);
    closers.push(async () => c.destroy());
    return c;
  }

  /** What the proxy's sniffing made of the connections to `port`, and the paths they took since `before`. */
  async function verdict(port: number, before: ProxyStats): Promise<{ protocols: string[]; paths: Record<string, number> }> {
    const now = await px.stats();
    const paths: Record<string, number> = {};
    for (const [path, n] of Object.entries(now.connections)) if (n !== (before.connections[path] ?? 0)) paths[path] = n - (before.connections[path] ?? 0);
    return { protocols: now.capture?.ports.find((p) => p.port === port)?.protocols ?? [], paths };
  }

  it('waits for a request line that arrives a byte at a time', async () => {
    const port = await inPod(http.createServer((req, res) => res.end(`got ${req.url}`)));
    const before = await px.stats();
    const c = connect(port);
    c.setNoDelay(true);
    await new Promise((r) => c.once('connect', r));
    let reply = '';
    c.setEncoding('utf8').on('data', (d: string) => (reply += d));
    const t0 = performance.now();
    for (const ch of 'GET /slow HTTP/1.1\r\n') {
      c.write(ch);
      await sleep(2);
    }
    const lineMs = performance.now() - t0;
    c.write('Host: x\r\n\r\n');
    await waitFor('the reply', () => reply.includes('got /slow'));
    assert.ok(lineMs < TIMEOUT_MS, `the request line took ${lineMs} ms to write, past the sniff timeout: the test proves nothing`);
    const v = await verdict(port, before);
    // settledBy === undefined: the bytes decided it. The timeout would have settled the partial line as raw.
    assert.equal(v.paths.raw, undefined, 'settled by the timeout');
    // sniffed.protocol === 'http1': the HTTP/1 path took the connection.
    assert.deepEqual(v.protocols, ['http1']);
    assert.deepEqual(v.paths, { http: 1 });
    assert.match(reply, /^HTTP\/1\.1 200 /);
  });

  it('settles a silent client (server-first protocol) as raw at the timeout, without losing a byte', async () => {
    const app = await recorder('220 ready\r\n');
    const before = await px.stats();
    const t0 = performance.now();
    const c = connect(app.port);
    let got = '';
    c.setEncoding('utf8').on('data', (d: string) => (got += d));
    const accepted = await app.next();
    // settledBy 'timeout', head of 0 bytes: the proxy dials the app only once it stops waiting, with nothing to send first.
    assert.ok(accepted.acceptedAt - t0 >= TIMEOUT_MS - 10, `decided before the timeout (${accepted.acceptedAt - t0} ms)`);
    await waitFor('the greeting', () => got === '220 ready\r\n');
    assert.equal(accepted.data.length, 0);
    // Not a byte lost: what the client says after the greeting reaches the app, once.
    c.write('HELO client\r\n');
    await waitFor('the client\'s reply at the app', () => accepted.data.length >= 13);
    await sleep(50);
    assert.equal(accepted.data.toString(), 'HELO client\r\n');
    assert.deepEqual(await verdict(app.port, before), { protocols: ['raw'], paths: { raw: 1 } });
  });

  it('settles a short read followed by silence as raw, keeping the bytes', async () => {
    const app = await recorder();
    const before = await px.stats();
    let sentAt = 0;
    const c = connect(app.port, () => {
      sentAt = performance.now();
      c.write('GET /par');
    });
    const accepted = await app.next();
    await waitFor('the sniffed bytes at the app', () => accepted.data.length >= 8);
    await sleep(50);
    // sniffed.settledBy 'timeout': dialled once the timeout ran out.
    assert.ok(accepted.acceptedAt - sentAt >= TIMEOUT_MS - 10, `decided ${accepted.acceptedAt - sentAt} ms after the bytes`);
    // sniffed.head 'GET /par', sent on as it came, not parsed: raw.
    assert.equal(accepted.data.toString(), 'GET /par');
    assert.equal(accepted.ended, false);
    assert.deepEqual(await verdict(app.port, before), { protocols: ['raw'], paths: { raw: 1 } });
  });

  it('settles a client that ends before a verdict as raw and says the stream ended', async () => {
    const app = await recorder();
    const before = await px.stats();
    let sentAt = 0;
    const c = connect(app.port, () => {
      sentAt = performance.now();
      c.end('GE');
    });
    const accepted = await app.next();
    await waitFor('the end of the stream at the app', () => accepted.ended, 5_000);
    // settledBy 'end', ended: settled by the client's FIN, well before the timeout, and the FIN passed on after the bytes.
    assert.ok(accepted.acceptedAt - sentAt < TIMEOUT_MS, `the proxy waited ${accepted.acceptedAt - sentAt} ms: settled by the timeout, not the end`);
    assert.deepEqual({ head: accepted.data.toString(), ended: accepted.ended }, { head: 'GE', ended: true });
    assert.deepEqual(await verdict(app.port, before), { protocols: ['raw'], paths: { raw: 1 } });
  });

  it('names a TLS ClientHello without completing (or breaking) the handshake', async () => {
    const app = await recorder();
    const before = await px.stats();
    let secured = false;
    const c = tls.connect({ ...px.endpoint(app.port), servername: 'app.test', rejectUnauthorized: false }, () => (secured = true));
    c.on('error', () => undefined);
    closers.push(async () => c.destroy());
    const accepted = await app.next();
    await waitFor('the ClientHello at the app', () => accepted.data.length >= 6 && accepted.data.includes('app.test'));
    // sniffed.protocol 'tls', head[0] 0x16: the app got the ClientHello record as the client sent it (handshake, ClientHello, SNI intact).
    assert.equal(accepted.data[0], 0x16);
    assert.equal(accepted.data[5], 0x01);
    assert.equal(secured, false, 'the proxy answered the handshake itself');
    assert.deepEqual(await verdict(app.port, before), { protocols: ['tls'], paths: { raw: 1 } });
  });

  it('hands sniffed HTTP/1.1 bytes to an http.Server: pipelined requests all answered, in order', async () => {
    const port = await inPod(http.createServer((req, res) => res.end(`got ${req.url}`)));
    const before = await px.stats();
    const c = connect(port, () => c.write('GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n'));
    let reply = '';
    c.setEncoding('utf8').on('data', (d: string) => (reply += d));
    await waitFor('both replies', () => reply.includes('got /b'));
    assert.ok(reply.indexOf('got /a') >= 0 && reply.indexOf('got /a') < reply.indexOf('got /b'), reply);
    assert.deepEqual(await verdict(port, before), { protocols: ['http1'], paths: { http: 1 } });
    assert.equal((await px.stats()).requests.inbound, (before.requests.inbound ?? 0) + 2, 'both requests went through the proxy\'s HTTP/1 path');
  });

  it('hands a sniffed h2c connection to an http2 server: streams work', async () => {
    const server = http2.createServer();
    server.on('stream', (stream, headers) => {
      stream.respond({ ':status': 200 });
      stream.end(`h2 ${headers[':path']}`);
    });
    const port = await inPod(server);
    const before = await px.stats();
    const client = http2.connect(`http://${px.podIp}:${port}`);
    closers.push(async () => client.close());
    const get = (path: string) =>
      new Promise<string>((resolve, reject) => {
        const req = client.request({ ':path': path });
        let body = '';
        req.setEncoding('utf8').on('data', (d: string) => (body += d));
        req.on('end', () => resolve(body));
        req.on('error', reject);
      });
    assert.deepEqual(await Promise.all([get('/one'), get('/two'), get('/three')]), ['h2 /one', 'h2 /two', 'h2 /three']);
    assert.deepEqual(await verdict(port, before), { protocols: ['h2c'], paths: { h2: 1 } });
    assert.equal((await px.stats()).requests.inbound, (before.requests.inbound ?? 0) + 3, 'the streams went through the proxy\'s HTTP/2 path');
  });

  // In-process on purpose: a guard of the pure hand-off function against a
  // caller's mistake. The proxy cannot be made to reach it: a stream that ends
  // before a verdict always settles as raw (previous tests), never handed off.
  it('refuses to hand off a stream that already ended', () => {
    const s = new net.Socket();
    assert.throws(() => handOff(http.createServer(), s, { protocol: 'raw', head: Buffer.from('x'), ended: true, settledBy: 'end' }), /already ended/);
    s.destroy();
  });
});

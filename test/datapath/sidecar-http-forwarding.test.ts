// What the HTTP/1 fault path forwards (sidecar/http-upstream.ts), byte for
// byte where it matters: a port is on the HTTP path whenever a rule names it,
// so requests no rule matches must reach the app, and come back, as they would
// without the proxy. Hop-by-hop headers are the exception: each side's
// connection is framed on its own (RFC 9110 §7.6.1).

import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { httpFault } from '../support/sidecar-plans.ts';
import { PodProxy, type Endpoint } from '../support/netns-proxy.ts';
import { request, waitFor } from '../support/sidecar-harness.ts';

/** Sends `head` (and `body`) on a fresh connection; resolves with everything the server sent until it closed or `until` matched. */
function rawExchange(to: Endpoint, head: string, opts: { body?: Buffer; until?: RegExp } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const s = net.connect(to, () => {
      s.write(head);
      if (opts.body) s.write(opts.body);
    });
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (opts.until?.test(got)) {
        s.destroy();
        resolve(got);
      }
    });
    s.on('close', () => resolve(got));
    s.on('error', reject);
  });
}

describe('sidecar HTTP/1 path: forwarding', function () {
  let app: http.Server;
  let appPort: number;
  let px: PodProxy;
  let port: Endpoint;
  /** The app's side of the last request to /slow, to see whether the proxy let go of it. */
  let slowClosed: Promise<true> | undefined;

  before(async () => {
    app = http.createServer((req, res) => {
      const url = req.url ?? '/';
      if (url === '/headers') return void res.end(JSON.stringify({ raw: req.rawHeaders, httpVersion: req.httpVersion }));
      if (url === '/respond') {
        // Case, duplicates, a custom reason phrase, and hop-by-hop headers the client must not see.
        res.writeHead(299, 'Custom Reason', ['X-Mixed-Case', 'A', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Connection', 'keep-alive, X-Secret', 'X-Secret', 'hop', 'Keep-Alive', 'timeout=5']);
        res.write('chunk-1;');
        return void setTimeout(() => res.end('chunk-2'), 20);
      }
      if (url === '/post') {
        let n = 0;
        req.on('data', (c: Buffer) => (n += c.length));
        return void req.on('end', () => res.end(`got ${n}`));
      }
      if (url === '/slow') {
        slowClosed = new Promise((r) => res.once('close', () => r(true)));
        res.writeHead(200, { 'content-type': 'text/plain' });
        const timer = setInterval(() => res.write('.'), 10);
        return void res.once('close', () => clearInterval(timer));
      }
      res.setHeader('content-length', '5');
      res.end(req.method === 'HEAD' ? undefined : 'hello');
    });
    px = await PodProxy.start();
    appPort = await px.listen(app);
    port = px.endpoint(appPort);
    // A rule that matches nothing puts the port on the HTTP path.
    await px.apply({ http: [httpFault({ name: 'never', match: { path: { exact: '/never' } }, abort: { status: 500, percent: 100 } })] });
  });
  after(async () => {
    await px?.close();
    app?.closeAllConnections();
    app?.close();
  });

  it('forwards request headers as sent (case, order, duplicates, Host) without the hop-by-hop ones', async () => {
    const before = (await px.stats()).connections.http ?? 0;
    const reply = await rawExchange(
      port,
      'GET /headers HTTP/1.1\r\nHost: shop.example:8080\r\nX-Mixed-Case: 1\r\nX-Dup: a\r\nX-Dup: b\r\nConnection: keep-alive, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n\r\n',
      { until: /\}$/ },
    );
    assert.equal((await px.stats()).connections.http, before + 1, 'not on the HTTP path');
    const { raw } = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4).replace(/^[0-9a-f]+\r\n/, '')) as { raw: string[] };
    // undici writes Host first and its own `connection: keep-alive` (that hop's); names are case-insensitive.
    const pairs = raw.flatMap((v, i) => (i % 2 === 0 ? [`${v}: ${raw[i + 1]}`] : []));
    assert.deepEqual(pairs.filter((p) => !/^(host|connection):/i.test(p)), ['X-Mixed-Case: 1', 'X-Dup: a', 'X-Dup: b']);
    assert.deepEqual(pairs.filter((p) => /^host:/i.test(p)).map((p) => p.toLowerCase()), ['host: shop.example:8080']);
    assert.deepEqual(pairs.filter((p) => /^connection:/i.test(p)).map((p) => p.toLowerCase()), ['connection: keep-alive']);
  });

  it('relays status, reason phrase and headers as the app sent them, without its hop-by-hop ones, and the body intact', async () => {
    const reply = await rawExchange(port, 'GET /respond HTTP/1.1\r\nHost: x\r\n\r\n', { until: /chunk-2\r\n0\r\n\r\n$/ });
    const [head] = reply.split('\r\n\r\n');
    const lines = head!.split('\r\n');
    assert.equal(lines[0], 'HTTP/1.1 299 Custom Reason');
    assert.ok(lines.includes('X-Mixed-Case: A'), head);
    assert.deepEqual(lines.filter((l) => l.startsWith('Set-Cookie')), ['Set-Cookie: a=1', 'Set-Cookie: b=2']);
    assert.ok(!lines.some((l) => /^(x-secret|keep-alive: timeout=5)/i.test(l)), head);
    const r = await request(port, '/respond');
    assert.equal(r.body, 'chunk-1;chunk-2');
  });

  it('answers HEAD with the headers and no body, and keeps the connection usable', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const head = await request(port, '/', { method: 'HEAD', agent });
      assert.equal(head.status, 200);
      assert.equal(head.headers['content-length'], '5');
      assert.equal(head.body, '');
      assert.equal((await request(port, '/', { agent })).body, 'hello');
    } finally {
      agent.destroy();
    }
  });

  it('answers Expect: 100-continue, then forwards the body', async () => {
    const reply = await rawExchange(port, 'POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n', { body: Buffer.from('abcd'), until: /got 4$/ });
    assert.match(reply, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
  });

  it('lets go of the upstream request when the client goes away mid-response', async () => {
    slowClosed = undefined;
    const req = http.get({ ...port, path: '/slow', agent: false });
    await new Promise<void>((resolve, reject) => {
      req.on('response', (res) => res.once('data', () => resolve()));
      req.on('error', reject);
    });
    req.destroy();
    await waitFor('the app to see its request closed', () => slowClosed, 2_000);
  });

  it('answers 502 naming the cause when the app is not listening, and counts it', async () => {
    // The rule that matches nothing covers every inbound port, this one too.
    const deadPort = await px.deadPort();
    const before = (await px.stats()).upstreamErrors;
    const r = await request(px.endpoint(deadPort), '/');
    assert.equal(r.status, 502);
    assert.match(r.body, new RegExp(`upstream ${px.podIp.replaceAll('.', '\\.')}:${deadPort} failed: ECONNREFUSED`));
    assert.equal((await px.stats()).upstreamErrors, before + 1);
  });
});

// ToxiproxyHttpClient stands in for toxiproxy-node-client's fetch()-based
// HttpClient: each case runs both against one server and expects the same
// result or the same error.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Toxiproxy, ToxiproxyError } from 'toxiproxy-node-client';
import { ToxiproxyHttpClient } from '../../sidecar/toxiproxy-http.ts';

type Client = Pick<ToxiproxyHttpClient, 'get' | 'post' | 'delete' | 'getText'>;
type Seen = { method: string; url: string; contentType: string | undefined; body: string };

describe('sidecar: Toxiproxy API client on node:http', () => {
  let server: http.Server;
  let base: string;
  let seen: Seen[] = [];
  const ours = new ToxiproxyHttpClient();
  const library = new Toxiproxy('http://unused').getApi() as unknown as Client;

  before(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, contentType: req.headers['content-type'], body });
        const [, status, answer] = /^\/(\d+)\/?(.*)$/.exec(req.url!) ?? [];
        res.statusCode = Number(status);
        res.end(decodeURIComponent(answer ?? ''));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    ours.close();
    server.close();
  });

  /** What `call` gives with each client: its value, or its error's class, name and message; and what the server saw. */
  async function both(call: (c: Client) => Promise<unknown>): Promise<Array<{ out: unknown; seen: Seen[] }>> {
    const results = [];
    for (const client of [library, ours]) {
      seen = [];
      const out = await call(client).then(
        (value) => ({ value }),
        (e: Error) => ({ error: e instanceof ToxiproxyError, name: e.name, message: e.message }),
      );
      results.push({ out, seen });
    }
    return results;
  }

  const cases: Array<[string, (c: Client) => Promise<unknown>]> = [
    ['get: a JSON answer', (c) => c.get(`${base}/200/${encodeURIComponent('{"a":{"b":[1,2]}}')}`)],
    ['get: an empty answer is { data: undefined }', (c) => c.get(`${base}/200`)],
    ['post: a JSON body', (c) => c.post(`${base}/201/${encodeURIComponent('{"name":"p"}')}`, { name: 'p', enabled: true })],
    ['post: no body', (c) => c.post(`${base}/204`)],
    ['delete', (c) => c.delete(`${base}/204`)],
    ['getText', (c) => c.getText(`${base}/200/2.12.0`)],
    ['a 404 throws ToxiproxyError with the status', (c) => c.get(`${base}/404/${encodeURIComponent('{"error":"proxy not found"}')}`)],
    ['a 409 on post', (c) => c.post(`${base}/409/exists`, { name: 'p' })],
    ['a 500 on getText', (c) => c.getText(`${base}/500/boom`)],
    ['an unparsable answer throws a SyntaxError as ToxiproxyError', (c) => c.get(`${base}/200/not-json`)],
  ];
  for (const [name, call] of cases) {
    it(name, async () => {
      const [lib, ourResult] = await both(call);
      assert.deepEqual(ourResult!.out, lib!.out);
      assert.deepEqual(ourResult!.seen, lib!.seen);
    });
  }

  it('a refused connection throws a ToxiproxyError, as fetch() does', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/version`;
    await new Promise((r) => closed.close(r));
    for (const client of [library, ours]) await assert.rejects(client.getText(url), ToxiproxyError);
  });

  it('gives up on a server that does not answer within its timeout', async () => {
    const silent = http.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const client = new ToxiproxyHttpClient({ timeoutMs: 100 });
    try {
      await assert.rejects(client.getText(`http://127.0.0.1:${(silent.address() as AddressInfo).port}/version`), { name: 'TimeoutError' });
    } finally {
      client.close();
      silent.closeAllConnections();
      silent.close();
    }
  });

  it('refuses an answer larger than 8 MiB', async () => {
    const big = http.createServer((_req, res) => res.end(Buffer.alloc(9 * 1024 * 1024, 0x20)));
    await new Promise<void>((r) => big.listen(0, '127.0.0.1', r));
    try {
      await assert.rejects(ours.get(`http://127.0.0.1:${(big.address() as AddressInfo).port}/proxies`), { name: 'Error', message: /larger than 8388608 bytes/ });
    } finally {
      big.closeAllConnections();
      big.close();
    }
  });
});

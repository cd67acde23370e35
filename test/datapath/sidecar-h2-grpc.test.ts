// The HTTP/2 path on loopback: a real @grpc/grpc-js server and client, and
// Node's http2 client for h2c, through a front listener that sniffs each
// connection and hands h2c to Http2Path, as the capturing proxy does.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { createLogger } from '../../common/log.ts';
import type { PlannedHttpFault } from '../../contract/plans.ts';
import { sniff } from '../../sidecar/capture/sniff.ts';
import { Http2Path } from '../../sidecar/http2-path.ts';
import { Metrics } from '../../sidecar/metrics.ts';
import { isErrorResponse } from '../../sidecar/guard.ts';
import { CART, CartClient, unaryCall, type CartClientInstance as Client } from '../support/grpc-cart.ts';

const far = Date.now() + 3_600_000;
const fault = (over: Partial<PlannedHttpFault>): PlannedHttpFault => ({ chaosId: 'shop/p', expiresAt: far, name: 'p/f', direction: 'inbound', match: {}, ...over });

describe('sidecar HTTP/2 path: gRPC and h2c faults per stream', function () {
  this.timeout(30_000);
  let app: grpc.Server;
  let h2app: http2.Http2Server;
  let appPort: number;
  let h2appPort: number;
  let front: net.Server;
  let h2front: net.Server;
  let faults: PlannedHttpFault[] = [];
  let client: Client;
  const metrics = new Metrics();
  const paths: Http2Path[] = [];
  /** Every stream's outcome as the steady-state guard would get it. */
  const observed: Array<{ status: number; grpc: number | undefined }> = [];

  async function frontFor(port: number): Promise<net.Server> {
    const path = new Http2Path({
      target: { direction: 'inbound', port, connectHost: '127.0.0.1', connectPort: port },
      faults: () => faults,
      networkDelayMs: () => 0,
      faultHeader: true,
      metrics,
      log: createLogger('test', 'silent'),
      observer: () => (status, _ms, grpcStatus) => observed.push({ status, grpc: grpcStatus }),
    });
    paths.push(path);
    const server = net.createServer((socket) => {
      void sniff(socket).then((s) => {
        assert.equal(s.protocol, 'h2', 'front only expects h2c here');
        path.handOff(socket, s);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return server;
  }

  before(async () => {
    app = new grpc.Server();
    app.addService(CART, {
      AddItem: (call: grpc.ServerUnaryCall<{ sku: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        if (call.request.sku === 'out-of-stock') return cb({ code: grpc.status.NOT_FOUND, details: 'no such sku' });
        call.sendMetadata(new grpc.Metadata());
        cb(null, { added: call.request.sku, echo: call.metadata.get('x-user')[0] ?? null });
      },
      GetCart: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { items: 3 }),
      Watch: (call: grpc.ServerWritableStream<unknown, unknown>) => {
        for (let i = 0; i < 5; i++) call.write({ n: i });
        const trailer = new grpc.Metadata();
        trailer.set('x-done', 'yes');
        call.end(trailer);
      },
    });
    appPort = await new Promise((resolve, reject) => app.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))));
    h2app = http2.createServer();
    h2app.on('stream', (stream, headers) => {
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end(`h2 app ${headers[':path']}`);
    });
    await new Promise<void>((r) => h2app.listen(0, '127.0.0.1', r));
    h2appPort = (h2app.address() as net.AddressInfo).port;
    front = await frontFor(appPort);
    h2front = await frontFor(h2appPort);
    client = new CartClient(`127.0.0.1:${(front.address() as net.AddressInfo).port}`, grpc.credentials.createInsecure()) as unknown as Client;
  });

  after(async () => {
    client?.close();
    for (const p of paths) p.close();
    await Promise.all([front, h2front].map((s) => new Promise((r) => s?.close(r))));
    await new Promise((r) => h2app?.close(r));
    app?.forceShutdown();
  });

  beforeEach(() => (faults = []));

  const unary = (name: string, req: unknown, md = new grpc.Metadata()) => unaryCall(client, name, req, md);

  it('relays unary calls with metadata untouched when no fault matches', async () => {
    faults = [fault({ protocol: 'grpc', match: { path: { exact: '/shop.Cart/GetCart' } }, abort: { status: 200, percent: 100, grpcStatus: 14 } })];
    const md = new grpc.Metadata();
    md.set('x-user', 'jane');
    const { err, res } = await unary('AddItem', { sku: 'a1' }, md);
    assert.equal(err, null);
    assert.deepEqual(res, { added: 'a1', echo: 'jane' });
  });

  it('aborts the matched method with the policy\'s grpc-status and message', async () => {
    faults = [fault({ protocol: 'grpc', match: { path: { exact: '/shop.Cart/GetCart' } }, abort: { status: 200, percent: 100, grpcStatus: 14, body: 'chaos: cart down' } })];
    const { err } = await unary('GetCart', {});
    assert.equal(err?.code, grpc.status.UNAVAILABLE);
    assert.equal(err?.details, 'chaos: cart down');
    assert.equal(err?.metadata.get('x-faultline-fault')[0], 'abort=grpc-14');
    assert.equal((await unary('AddItem', { sku: 'b' })).err, null, 'another method of the same service still works');
  });

  it('aborts with an HTTP status, which the client maps (503 → UNAVAILABLE)', async () => {
    faults = [fault({ protocol: 'grpc', match: { path: { prefix: '/shop.Cart/' } }, abort: { status: 503, percent: 100 } })];
    const { err } = await unary('AddItem', { sku: 'c' });
    assert.equal(err?.code, grpc.status.UNAVAILABLE);
  });

  it('delays each matched call, not the others', async () => {
    faults = [fault({ protocol: 'grpc', match: { path: { exact: '/shop.Cart/AddItem' } }, delay: { fixedMs: 300, jitterMs: 0, percent: 100 } })];
    const slow = await unary('AddItem', { sku: 'd' });
    const fast = await unary('GetCart', {});
    assert.equal(slow.err, null);
    assert.ok(slow.ms >= 290, `delayed call took ${slow.ms} ms`);
    assert.ok(fast.ms < 250, `undelayed call took ${fast.ms} ms`);
  });

  it('hands the steady-state guard each call\'s grpc-status: the app\'s non-OK and a fault\'s code count as errors, OK does not', async () => {
    faults = [fault({ protocol: 'grpc', match: { path: { exact: '/shop.Cart/GetCart' } }, abort: { status: 200, percent: 100, grpcStatus: 14 } })];
    observed.length = 0;
    assert.equal((await unaryCall(client, 'AddItem', { sku: 'apple' })).err, null);
    const outOfStock = await unaryCall(client, 'AddItem', { sku: 'out-of-stock' });
    assert.equal(outOfStock.err?.code, grpc.status.NOT_FOUND, outOfStock.err?.message);
    assert.equal((await unaryCall(client, 'GetCart', {})).err?.code, grpc.status.UNAVAILABLE);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(observed, [{ status: 200, grpc: 0 }, { status: 200, grpc: grpc.status.NOT_FOUND }, { status: 200, grpc: 14 }]);
    assert.deepEqual(observed.map((o) => isErrorResponse(o.status, o.grpc)), [false, true, true], 'HTTP 200 with a non-OK grpc-status is an error');
  });

  it('never faults a kubelet gRPC probe (User-Agent kube-probe/…), even under a 100% abort of every call', async () => {
    faults = [fault({ protocol: 'grpc', match: {}, abort: { status: 200, percent: 100, grpcStatus: 14 } })];
    const probe = new CartClient(`127.0.0.1:${(front.address() as net.AddressInfo).port}`, grpc.credentials.createInsecure(), {
      'grpc.primary_user_agent': 'kube-probe/1.36',
    }) as unknown as Client;
    try {
      const err = await new Promise<grpc.ServiceError | null>((resolve) => (probe.GetCart as (r: unknown, cb: (e: grpc.ServiceError | null) => void) => void).call(probe, {}, resolve));
      assert.equal(err, null);
      assert.equal((await unary('GetCart', {})).err?.code, grpc.status.UNAVAILABLE, 'any other client is faulted');
    } finally {
      probe.close();
    }
  });

  it('relays server streaming with its trailers', async () => {
    faults = [fault({ protocol: 'grpc', match: { path: { exact: '/shop.Cart/GetCart' } }, abort: { status: 200, percent: 100, grpcStatus: 13 } })];
    const call = (client.Watch as (r: unknown) => grpc.ClientReadableStream<{ n: number }>).call(client, {});
    const got: number[] = [];
    const trailers = await new Promise<grpc.StatusObject>((resolve, reject) => {
      call.on('data', (m: { n: number }) => got.push(m.n));
      call.on('status', resolve);
      call.on('error', reject);
    });
    assert.deepEqual(got, [0, 1, 2, 3, 4]);
    assert.equal(trailers.code, grpc.status.OK);
    assert.equal(trailers.metadata.get('x-done')[0], 'yes');
  });

  it('leaves plain HTTP faults off gRPC-only rules, and applies HTTP rules to h2c requests', async () => {
    const session = http2.connect(`http://127.0.0.1:${(h2front.address() as net.AddressInfo).port}`);
    const get = (path: string) =>
      new Promise<{ status: number; body: string; fault: string | undefined }>((resolve, reject) => {
        const req = session.request({ ':path': path });
        let status = 0;
        let f: string | undefined;
        let body = '';
        req.on('response', (h) => {
          status = Number(h[':status']);
          f = h['x-faultline-fault'] as string | undefined;
        });
        req.setEncoding('utf8').on('data', (d: string) => (body += d));
        req.on('end', () => resolve({ status, body, fault: f }));
        req.on('error', reject);
      });
    try {
      faults = [
        fault({ protocol: 'grpc', match: { path: { prefix: '/' } }, abort: { status: 200, percent: 100, grpcStatus: 14 } }),
        fault({ match: { path: { prefix: '/faulted' } }, abort: { status: 418, percent: 100 } }),
      ];
      assert.deepEqual(await get('/ok'), { status: 200, body: 'h2 app /ok', fault: undefined });
      assert.deepEqual(await get('/faulted/x'), { status: 418, body: 'fault filter abort', fault: 'abort=418' });
      const many = await Promise.all(Array.from({ length: 20 }, (_, i) => get(`/ok/${i}`)));
      assert.deepEqual(many.map((r) => r.body), Array.from({ length: 20 }, (_, i) => `h2 app /ok/${i}`));
    } finally {
      session.close();
    }
  });

  it('answers UNAVAILABLE for gRPC (502 for h2c) when the upstream is gone', async () => {
    const dead = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const deadFront = await frontFor(dead);
    const c = new CartClient(`127.0.0.1:${(deadFront.address() as net.AddressInfo).port}`, grpc.credentials.createInsecure()) as unknown as Client;
    try {
      const err = await new Promise<grpc.ServiceError | null>((resolve) => (c.GetCart as (r: unknown, cb: (e: grpc.ServiceError | null) => void) => void).call(c, {}, resolve));
      assert.equal(err?.code, grpc.status.UNAVAILABLE);
      assert.match(err?.details ?? '', /upstream 127\.0\.0\.1:\d+ failed: ECONNREFUSED/);
    } finally {
      c.close();
      await new Promise((r) => deadFront.close(r));
    }
  });
});

// The HTTP/2 path: a real @grpc/grpc-js server and client, and Node's http2
// client for h2c, through a faultline-proxy in a pod's network namespace
// (PodProxy: the CLI under test, FAULTLINE_CLI, capturing as in a pod). The
// apps are served in the pod by the test process; the clients reach them at
// the pod IP, so every connection is captured, sniffed and handed to the
// proxy's HTTP/2 path. Faults come from the proxy's live plan file.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { PlannedHttpFault, PlannedGuard } from '../../contract/plans.ts';
import { isErrorResponse } from '../../sidecar/guard.ts';
import { CART, CartClient, unaryCall, type CartClientInstance as Client } from '../support/grpc-cart.ts';
import { PodProxy } from '../support/netns-proxy.ts';
import { sleep, waitFor } from '../support/sidecar-harness.ts';

const far = Date.now() + 3_600_000;
const fault = (over: Partial<PlannedHttpFault>): PlannedHttpFault => ({ chaosId: 'shop/p', expiresAt: far, name: 'p/f', direction: 'inbound', match: {}, ...over });
/**
 * Only ports with HTTP or gRPC faults are sniffed; a connection made while its
 * port has none stays raw for good. This one matches no request and is in
 * every plan, so every connection takes the HTTP/2 path, as the tests expect.
 */
const SNIFF = fault({ name: 'p/sniff', protocol: 'grpc', match: { path: { exact: '/never.Called/Never' } }, abort: { status: 200, percent: 100, grpcStatus: 13 } });
const BREACH = 'steady-state guard breached: faults of the policy end now';

describe('sidecar HTTP/2 path: gRPC and h2c faults per stream', function () {
  this.timeout(30_000);
  let px: PodProxy;
  let app: grpc.Server;
  let injector: grpc.ConnectionInjector;
  /** Listens in the pod and hands each connection to `app` (grpc-js binds its own listeners outside the pod otherwise). */
  let appFront: net.Server;
  let h2app: http2.Http2Server;
  let appPort: number;
  let h2appPort: number;
  let client: Client;

  /** The live plan: these faults (and guards) plus SNIFF; resolves once the proxy applied it. */
  const setFaults = (faults: PlannedHttpFault[], guards?: PlannedGuard[]): Promise<void> => px.apply({ http: [SNIFF, ...faults], ...(guards ? { guards } : {}) });
  /** A Cart client of the pod's `port`, through the proxy. */
  const cartClient = (port: number, options: Record<string, string | number> = {}): Client =>
    new CartClient(`${px.podIp}:${port}`, grpc.credentials.createInsecure(), { 'grpc.enable_http_proxy': 0, ...options }) as unknown as Client;

  before(async () => {
    px = await PodProxy.start();
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
    injector = app.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    appFront = net.createServer((socket) => injector.injectConnection(socket));
    appPort = await px.listen(appFront);
    h2app = http2.createServer();
    h2app.on('stream', (stream, headers) => {
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      // /reset, /drop: the answer starts, then the app resets the stream or drops its connection mid-body.
      if (headers[':path'] === '/reset' || headers[':path'] === '/drop') {
        stream.on('error', () => undefined); // its own reset
        stream.write('partial');
        setTimeout(() => (headers[':path'] === '/reset' ? stream.destroy(new Error('app failed mid-body')) : stream.session?.socket.destroy()), 5);
        return;
      }
      stream.end(`h2 app ${headers[':path']}`);
    });
    h2appPort = await px.listen(h2app);
    client = cartClient(appPort);
  });

  after(async () => {
    client?.close();
    injector?.destroy();
    app?.forceShutdown();
    await new Promise((r) => (appFront ? appFront.close(r) : r(undefined)));
    await new Promise((r) => (h2app ? h2app.close(r) : r(undefined)));
    await px?.close();
  });

  beforeEach(() => setFaults([]));

  const unary = (name: string, req: unknown, md = new grpc.Metadata()) => unaryCall(client, name, req, md);

  it('relays unary calls with metadata untouched when no fault matches', async () => {
    await setFaults([fault({ protocol: 'grpc', match: { path: { exact: '/shop.Cart/GetCart' } }, abort: { status: 200, percent: 100, grpcStatus: 14 } })]);
    const before = (await px.stats()).requests.inbound ?? 0;
    const md = new grpc.Metadata();
    md.set('x-user', 'jane');
    const { err, res } = await unary('AddItem', { sku: 'a1' }, md);
    assert.equal(err, null);
    assert.deepEqual(res, { added: 'a1', echo: 'jane' });
    assert.equal((await px.stats()).requests.inbound, before + 1, 'the call went through the proxy\'s HTTP/2 path');
  });

  it('aborts the matched method with the policy\'s grpc-status and message', async () => {
    await setFaults([fault({ protocol: 'grpc', match: { path: { exact: '/shop.Cart/GetCart' } }, abort: { status: 200, percent: 100, grpcStatus: 14, body: 'chaos: cart down' } })]);
    const { err } = await unary('GetCart', {});
    assert.equal(err?.code, grpc.status.UNAVAILABLE);
    assert.equal(err?.details, 'chaos: cart down');
    assert.equal(err?.metadata.get('x-faultline-fault')[0], 'abort=grpc-14');
    assert.equal((await unary('AddItem', { sku: 'b' })).err, null, 'another method of the same service still works');
  });

  it('aborts with an HTTP status, which the client maps (503 → UNAVAILABLE)', async () => {
    await setFaults([fault({ protocol: 'grpc', match: { path: { prefix: '/shop.Cart/' } }, abort: { status: 503, percent: 100 } })]);
    const { err } = await unary('AddItem', { sku: 'c' });
    assert.equal(err?.code, grpc.status.UNAVAILABLE);
  });

  it('delays each matched call, not the others', async () => {
    await setFaults([fault({ protocol: 'grpc', match: { path: { exact: '/shop.Cart/AddItem' } }, delay: { fixedMs: 300, jitterMs: 0, percent: 100 } })]);
    const slow = await unary('AddItem', { sku: 'd' });
    const fast = await unary('GetCart', {});
    assert.equal(slow.err, null);
    assert.ok(slow.ms >= 290, `delayed call took ${slow.ms} ms`);
    assert.ok(fast.ms < 250, `undelayed call took ${fast.ms} ms`);
  });

  it('hands the steady-state guard each call\'s grpc-status: the app\'s non-OK and a fault\'s code count as errors, OK does not', async () => {
    // What the HTTP/2 path hands the guard stays inside the proxy; what the
    // guard makes of it does not: a breach is logged with the error rate and
    // request count it judged. Two policies' guards watch the port: A trips on
    // the first error (any error rate above 0), B on 2 errors of 3 calls.
    // A's fault matches nothing; B's aborts GetCart with grpc-status 14. The
    // breaches' figures are the evidence: OK is no error (A stays quiet), the
    // app's NOT_FOUND over HTTP 200 is one (A: 1 of 2), the fault's 14 too (B: 2 of 3).
    await setFaults(
      [
        fault({ chaosId: 'shop/guard-a', name: 'guard-a/f', protocol: 'grpc', match: { path: { exact: '/never.Called/Never' } }, abort: { status: 200, percent: 100, grpcStatus: 13 } }),
        fault({ chaosId: 'shop/guard-b', name: 'guard-b/f', protocol: 'grpc', match: { path: { exact: '/shop.Cart/GetCart' } }, abort: { status: 200, percent: 100, grpcStatus: 14 } }),
      ],
      [
        { chaosId: 'shop/guard-a', uid: 'uid-guard-a', generation: 1, errorRate: { ratio: 0, windowMs: 60_000, minRequests: 1 } },
        { chaosId: 'shop/guard-b', uid: 'uid-guard-b', generation: 1, errorRate: { ratio: 0.5, windowMs: 60_000, minRequests: 3 } },
      ],
    );
    const seen = px.find(BREACH).length;
    const breach = (policy: string): Promise<Record<string, unknown>> => waitFor(`guard ${policy} to trip`, () => px.find(BREACH, { policy }).at(0), 5_000);

    assert.equal((await unaryCall(client, 'AddItem', { sku: 'apple' })).err, null);
    await sleep(200); // past the guards' judgement throttle (50 ms): a breach would be logged by now
    assert.deepEqual(px.find(BREACH).slice(seen), [], 'an OK call tripped a guard that trips on any error');

    const outOfStock = await unaryCall(client, 'AddItem', { sku: 'out-of-stock' });
    assert.equal(outOfStock.err?.code, grpc.status.NOT_FOUND, outOfStock.err?.message);
    const a = await breach('shop/guard-a');
    assert.deepEqual({ condition: a.condition, observed: a.observed, requests: a.requests }, { condition: 'errorRate', observed: 50, requests: 2 }, 'guard A: 1 error in 2 calls');

    assert.equal((await unaryCall(client, 'GetCart', {})).err?.code, grpc.status.UNAVAILABLE);
    const b = await breach('shop/guard-b');
    assert.deepEqual({ condition: b.condition, observed: b.observed, requests: b.requests }, { condition: 'errorRate', observed: 66.7, requests: 3 }, 'guard B: 2 errors in 3 calls');

    // The classification itself, in-process (a pure function the proxy applies to each stream's HTTP status and grpc-status).
    assert.deepEqual([[200, 0], [200, grpc.status.NOT_FOUND], [200, 14]].map(([s, g]) => isErrorResponse(s!, g)), [false, true, true]);
  });

  for (const [path, how] of [['/reset', 'resets the stream'], ['/drop', 'drops its connection']] as const) {
    it(`fails a stream whose upstream ${how} mid-body, and hands the guard the failure, not the 200 its headers said`, async () => {
      const chaosId = `shop/guard${path.replace('/', '-')}`;
      const guard: PlannedGuard = { chaosId, uid: `uid${path.replace('/', '-')}`, generation: 1, errorRate: { ratio: 0, windowMs: 60_000, minRequests: 1 } };
      await setFaults([fault({ chaosId, name: 'g/f', match: { path: { exact: '/never' } }, abort: { status: 418, percent: 100 } })], [guard]);
      const session = http2.connect(`http://${px.podIp}:${h2appPort}`);
      try {
        const outcome = await new Promise<string>((resolve) => {
          const req = session.request({ ':path': path });
          req.resume();
          req.on('end', () => resolve(`ended cleanly (rstCode ${req.rstCode})`));
          req.on('error', (err: NodeJS.ErrnoException) => resolve(`failed: ${err.code}`));
          req.on('close', () => resolve(`closed with code ${req.rstCode}`));
        });
        assert.doesNotMatch(outcome, /^ended cleanly/, `a cut body must not pass for a whole one: ${outcome}`);
        const breach = await waitFor('the guard to trip', () => px.find(BREACH, { policy: chaosId }).at(0), 5_000);
        assert.deepEqual({ condition: breach.condition, observed: breach.observed, requests: breach.requests }, { condition: 'errorRate', observed: 100, requests: 1 });
      } finally {
        session.close();
      }
    });
  }

  it('never faults a kubelet gRPC probe (User-Agent kube-probe/…), even under a 100% abort of every call', async () => {
    await setFaults([fault({ protocol: 'grpc', match: {}, abort: { status: 200, percent: 100, grpcStatus: 14 } })]);
    const probe = cartClient(appPort, { 'grpc.primary_user_agent': 'kube-probe/1.36' });
    try {
      const before = (await px.stats()).requests.inbound ?? 0;
      const err = await new Promise<grpc.ServiceError | null>((resolve) => (probe.GetCart as (r: unknown, cb: (e: grpc.ServiceError | null) => void) => void).call(probe, {}, resolve));
      assert.equal(err, null);
      assert.equal((await px.stats()).requests.inbound, before + 1, 'the probe went through the HTTP/2 path, not around it');
      assert.equal((await unary('GetCart', {})).err?.code, grpc.status.UNAVAILABLE, 'any other client is faulted');
    } finally {
      probe.close();
    }
  });

  it('relays server streaming with its trailers', async () => {
    await setFaults([fault({ protocol: 'grpc', match: { path: { exact: '/shop.Cart/GetCart' } }, abort: { status: 200, percent: 100, grpcStatus: 13 } })]);
    const before = (await px.stats()).requests.inbound ?? 0;
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
    assert.equal((await px.stats()).requests.inbound, before + 1, 'the stream went through the HTTP/2 path');
  });

  it('leaves plain HTTP faults off gRPC-only rules, and applies HTTP rules to h2c requests', async () => {
    const session = http2.connect(`http://${px.podIp}:${h2appPort}`);
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
      await setFaults([
        fault({ protocol: 'grpc', match: { path: { prefix: '/' } }, abort: { status: 200, percent: 100, grpcStatus: 14 } }),
        fault({ match: { path: { prefix: '/faulted' } }, abort: { status: 418, percent: 100 } }),
      ]);
      assert.deepEqual(await get('/ok'), { status: 200, body: 'h2 app /ok', fault: undefined });
      assert.deepEqual(await get('/faulted/x'), { status: 418, body: 'fault filter abort', fault: 'abort=418' });
      const many = await Promise.all(Array.from({ length: 20 }, (_, i) => get(`/ok/${i}`)));
      assert.deepEqual(many.map((r) => r.body), Array.from({ length: 20 }, (_, i) => `h2 app /ok/${i}`));
    } finally {
      session.close();
    }
  });

  it('answers UNAVAILABLE for gRPC (502 for h2c) when the upstream is gone', async () => {
    // A port of the pod nothing listens on: the proxy still takes the connection (capture), and its upstream is refused.
    const dead = await px.deadPort();
    const c = cartClient(dead);
    try {
      const err = await new Promise<grpc.ServiceError | null>((resolve) => (c.GetCart as (r: unknown, cb: (e: grpc.ServiceError | null) => void) => void).call(c, {}, resolve));
      assert.equal(err?.code, grpc.status.UNAVAILABLE);
      // Inbound traffic goes on to the address the client dialled: the pod IP.
      assert.match(err?.details ?? '', new RegExp(`upstream ${px.podIp.replaceAll('.', '\\.')}:${dead} failed: ECONNREFUSED`));
    } finally {
      c.close();
    }
  });
});

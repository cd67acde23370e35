// HTTP faults and pass-through: a faultline-proxy in a pod's network namespace
// (capture, as in a pod: PodProxy) in front of a real HTTP app the test serves
// in that namespace, reached from the root namespace at the pod IP.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import WebSocket from 'ws';
import { externalPackages } from '../../images/build.ts';
import { binomialBand, httpFault } from '../support/sidecar-plans.ts';
import { PodProxy, type Endpoint } from '../support/netns-proxy.ts';
import { packageClosure } from '../support/package-closure.ts';
import { cliPath, repoRoot, request, startHttpApp, startTcpApp, tcpExchange, sleep, waitFor, type App } from '../support/sidecar-harness.ts';

describe('sidecar HTTP datapath', function () {
  let app: Awaited<ReturnType<typeof startHttpApp>>;
  let other: App;
  let echo: App;
  let upstream: App; // outside the pod (root namespace), on app's port number
  let px: PodProxy;
  let a: Endpoint; // `app` in the pod, through the proxy (inbound)
  let b: Endpoint; // `other` in the pod, through the proxy (inbound)
  /** Status of a GET the pod's app sends to `upstream` (outbound, through the proxy). */
  let out: () => Promise<number>;

  before(async () => {
    px = await PodProxy.start({ probe: true });
    const inPod = (s: net.Server) => px.listen(s);
    app = await startHttpApp(inPod);
    other = await startHttpApp(inPod);
    echo = await startTcpApp('echo', 0, inPod);
    // The same port number outside the pod: only the direction tells the two apart.
    upstream = await startHttpApp(async (s) => {
      await new Promise<void>((r) => s.listen(app.port, px.clientIp, r));
      return app.port;
    });
    a = px.endpoint(app.port);
    b = px.endpoint(other.port);
    out = () => px.curlStatus(`http://${px.clientIp}:${app.port}/`);
  });
  after(async () => {
    await px?.close();
    await Promise.all([app?.close(), other?.close(), echo?.close(), upstream?.close()]);
  });
  beforeEach(() => px.apply({}));

  describe('kubelet probes', () => {
    it('a liveness probe survives a 100% abort (and delay) on its own port; other clients do not', async () => {
      await px.apply({ http: [httpFault({ name: 'all', abort: { status: 503, percent: 100 }, delay: { fixedMs: 2_000, jitterMs: 0, percent: 100 } })] });
      for (const ua of ['kube-probe/1.36', 'kube-lifecycle/1.36']) {
        const t0 = performance.now();
        const probe = await request(a, '/healthz', { headers: { 'user-agent': ua } });
        assert.equal(probe.status, 200, ua);
        assert.equal(probe.body, 'ok GET /healthz');
        assert.ok(performance.now() - t0 < 1_500, `${ua} was delayed`);
      }
      assert.equal((await request(a, '/healthz', { headers: { 'user-agent': 'curl/8' } })).status, 503);
    });
  });

  describe('pass-through without faults', () => {
    it('forwards HTTP unchanged on the raw path', async () => {
      const before = (await px.stats()).connections.raw ?? 0;
      const r = await request(a, '/hello?x=1', { method: 'PUT' });
      assert.equal(r.status, 200);
      assert.equal(r.body, 'ok PUT /hello?x=1');
      assert.equal(r.headers['x-faultline-fault'], undefined);
      assert.equal((await px.stats()).connections.raw, before + 1);
    });

    it('forwards raw TCP byte-exact, half-close included', async () => {
      const payload = randomBytes(3 * 1024 * 1024 + 17);
      const r = await tcpExchange(px.endpoint(echo.port), payload);
      assert.equal(r.error, undefined);
      assert.ok(r.data.equals(payload), `echoed ${r.data.length} of ${payload.length} bytes, content equal: ${r.data.equals(payload)}`);
    });

    it('streams a 50 MB upload on the HTTP path: the echo starts before the upload ends', async () => {
      // A fault on another path puts this port on the HTTP path without touching /echo.
      await px.apply({ http: [httpFault({ name: 'other', match: { path: { exact: '/never' } }, abort: { status: 500, percent: 100 } })] });
      const total = 50 * 1024 * 1024;
      const chunk = Buffer.alloc(256 * 1024, 0x62);
      let sent = 0;
      let sentAtFirstByte = -1;
      let received = 0;
      await new Promise<void>((resolve, reject) => {
        const req = http.request({ ...a, path: '/echo', method: 'POST', agent: false }, (res) => {
          res.on('data', (c: Buffer) => {
            if (sentAtFirstByte < 0) sentAtFirstByte = sent;
            received += c.length;
          });
          res.on('end', resolve);
          res.on('error', reject);
        });
        req.on('error', reject);
        const pump = (): void => {
          while (sent < total) {
            sent += chunk.length;
            if (!req.write(chunk)) return void req.once('drain', pump);
          }
          req.end();
        };
        pump();
      });
      assert.equal(received, total);
      assert.ok(sentAtFirstByte >= 0 && sentAtFirstByte < total / 2, `first echoed byte arrived after ${sentAtFirstByte} of ${total} bytes were sent`);
      assert.ok((await px.stats()).connections.http! > 0);
    });
  });

  describe('delay', () => {
    it('delays matching requests by the fixed delay, others not at all', async () => {
      await px.apply({ http: [httpFault({ name: 'slow', match: { path: { prefix: '/slow' } }, delay: { fixedMs: 150, jitterMs: 0, percent: 100 } })] });
      for (let i = 0; i < 5; i++) {
        const slow = await request(a, '/slow/x');
        assert.equal(slow.status, 200);
        assert.ok(slow.ms >= 150 && slow.ms < 150 + 100, `delayed request took ${slow.ms} ms`);
        assert.equal(slow.headers['x-faultline-fault'], 'delay=150ms');
        const fast = await request(a, '/fast');
        assert.ok(fast.ms < 100, `undelayed request took ${fast.ms} ms`);
        assert.equal(fast.headers['x-faultline-fault'], undefined);
      }
    });

    it('spreads delays uniformly within fixed ± jitter', async () => {
      await px.apply({ http: [httpFault({ name: 'jit', delay: { fixedMs: 100, jitterMs: 60, percent: 100 } })] });
      // Warm the proxy's HTTP path for this rule first (another process now): the bounds are about the delay, not start-up.
      await Promise.all(Array.from({ length: 10 }, () => request(a, '/warm')));
      const times = await Promise.all(Array.from({ length: 60 }, () => request(a, '/j').then((r) => r.ms)));
      const min = Math.min(...times);
      const max = Math.max(...times);
      assert.ok(min >= 40, `min ${min} ms below fixed - jitter`);
      assert.ok(max < 160 + 100, `max ${max} ms far above fixed + jitter`);
      // 60 uniform draws over 120 ms: a spread under 60 ms has probability ~1e-15.
      assert.ok(max - min > 60, `spread ${max - min} ms: jitter not applied`);
    });

    it('delays about `percent` of requests (binomial bounds over 400)', async () => {
      await px.apply({ http: [httpFault({ name: 'some', delay: { fixedMs: 200, jitterMs: 0, percent: 30 } })] });
      // One connection per request (on a shared keep-alive socket a request
      // would also wait for the delayed one ahead of it), 20 at a time (client,
      // proxy and app share this event loop; hundreds at once add their own delay).
      const times: number[] = [];
      await Promise.all(
        Array.from({ length: 20 }, async () => {
          while (times.length < 400) {
            const i = times.push(0) - 1;
            times[i] = (await request(a, '/p')).ms;
          }
        }),
      );
      const delayed = times.filter((t) => t >= 150).length;
      const [lo, hi] = binomialBand(400, 0.3);
      assert.ok(delayed >= lo && delayed <= hi, `${delayed}/400 delayed, expected within [${lo.toFixed(0)}, ${hi.toFixed(0)}]`);
    });
  });

  describe('abort', () => {
    it('answers with the status and body instead of proxying', async () => {
      await px.apply({ http: [httpFault({ name: 'boom', abort: { status: 503, percent: 100, body: 'chaos says no' } })] });
      const before = app.requests;
      const r = await request(a, '/x');
      assert.equal(r.status, 503);
      assert.equal(r.body, 'chaos says no');
      assert.equal(r.headers['x-faultline-fault'], 'abort=503');
      assert.equal(app.requests, before, 'an aborted request must not reach the app');
    });

    it('aborts about `percent` of requests (binomial bounds over 400)', async () => {
      await px.apply({ http: [httpFault({ name: 'some', abort: { status: 500, percent: 25 } })] });
      const agent = new http.Agent({ keepAlive: true, maxSockets: 20 });
      const statuses = await Promise.all(Array.from({ length: 400 }, () => request(a, '/p', { agent }).then((r) => r.status)));
      agent.destroy();
      const aborted = statuses.filter((s) => s === 500).length;
      assert.equal(statuses.filter((s) => s !== 500 && s !== 200).length, 0);
      const [lo, hi] = binomialBand(400, 0.25);
      assert.ok(aborted >= lo && aborted <= hi, `${aborted}/400 aborted, expected within [${lo.toFixed(0)}, ${hi.toFixed(0)}]`);
    });

    it('delays, then aborts, when one rule has both', async () => {
      await px.apply({ http: [httpFault({ name: 'both', delay: { fixedMs: 120, jitterMs: 0, percent: 100 }, abort: { status: 429, percent: 100 } })] });
      const r = await request(a, '/x');
      assert.equal(r.status, 429);
      assert.ok(r.ms >= 120, `took ${r.ms} ms`);
      assert.equal(r.headers['x-faultline-fault'], 'delay=120ms,abort=429');
    });
  });

  describe('matching', () => {
    const teapot = { status: 418, percent: 100 };
    const cases: Array<{ what: string; match: Parameters<typeof httpFault>[0]['match']; hit: Array<[string, string, Record<string, string>?]>; miss: Array<[string, string, Record<string, string>?]> }> = [
      { what: 'path exact', match: { path: { exact: '/a' } }, hit: [['GET', '/a'], ['GET', '/a?q=1']], miss: [['GET', '/a/b'], ['GET', '/ab']] },
      { what: 'path prefix', match: { path: { prefix: '/api/' } }, hit: [['GET', '/api/x'], ['POST', '/api/']], miss: [['GET', '/api'], ['GET', '/x/api/']] },
      { what: 'path regex (anchored)', match: { path: { regex: '/users/[0-9]+' } }, hit: [['GET', '/users/42']], miss: [['GET', '/users/x'], ['GET', '/v1/users/42'], ['GET', '/users/42/orders']] },
      { what: 'methods', match: { methods: ['POST', 'delete'] }, hit: [['POST', '/'], ['DELETE', '/']], miss: [['GET', '/'], ['PUT', '/']] },
      { what: 'headers', match: { headers: { 'X-Canary': '1' } }, hit: [['GET', '/', { 'x-canary': '1' }]], miss: [['GET', '/'], ['GET', '/', { 'x-canary': '2' }]] },
      { what: 'all at once', match: { path: { prefix: '/api' }, methods: ['GET'], headers: { 'x-canary': '1' } }, hit: [['GET', '/api/1', { 'x-canary': '1' }]], miss: [['POST', '/api/1', { 'x-canary': '1' }], ['GET', '/web', { 'x-canary': '1' }], ['GET', '/api/1']] },
    ];
    for (const c of cases) {
      it(`matches on ${c.what}`, async () => {
        await px.apply({ http: [httpFault({ name: c.what, match: c.match, abort: teapot })] });
        for (const [method, path, headers] of c.hit) assert.equal((await request(a, path, { method, headers: headers ?? {} })).status, 418, `${method} ${path} ${JSON.stringify(headers)} should match`);
        for (const [method, path, headers] of c.miss) assert.equal((await request(a, path, { method, headers: headers ?? {} })).status, 200, `${method} ${path} ${JSON.stringify(headers)} should not match`);
      });
    }

    it('matches on port: only the named app port is faulted', async () => {
      await px.apply({ http: [httpFault({ name: 'port', match: { port: app.port }, abort: teapot })] });
      assert.equal((await request(a, '/')).status, 418);
      assert.equal((await request(b, '/')).status, 200);
      assert.equal((await px.stats()).connections.http! > 0, true);
    });

    it('keeps inbound and outbound apart', async () => {
      await px.apply({ http: [httpFault({ name: 'out', direction: 'outbound', match: { host: px.clientIp, port: app.port }, abort: { status: 502, percent: 100 } })] });
      assert.equal(await out(), 502);
      assert.equal((await request(a, '/')).status, 200, 'an outbound fault must not touch inbound traffic to the same port');
      await px.apply({ http: [httpFault({ name: 'in', direction: 'inbound', abort: teapot })] });
      assert.equal(await out(), 200, 'an inbound fault must not touch outbound traffic');
      assert.equal((await request(a, '/')).status, 418);
    });

    it('ignores an outbound fault for another host', async () => {
      await px.apply({ http: [httpFault({ name: 'elsewhere', direction: 'outbound', match: { host: 'payments.shop.svc', port: app.port }, abort: teapot })] });
      assert.equal(await out(), 200);
    });
  });

  describe('plan lifecycle', () => {
    it('ignores a rule that has already expired', async () => {
      await px.apply({ http: [httpFault({ name: 'old', expiresAt: Date.now() - 1, abort: { status: 503, percent: 100 } })] });
      assert.equal((await request(a, '/')).status, 200);
      assert.deepEqual((await px.currentPlan()).http, []);
    });

    it('ends a fault at its expiresAt without any plan update', async () => {
      const expiresAt = Date.now() + 1_500;
      await px.apply({ http: [httpFault({ name: 'brief', expiresAt, abort: { status: 503, percent: 100 } })] });
      const updates = (await px.stats()).planUpdates;
      assert.equal((await request(a, '/')).status, 503);
      await sleep(expiresAt - Date.now() - 150);
      assert.equal((await request(a, '/')).status, 503, 'still active just before expiry');
      await sleep(expiresAt - Date.now() + 60);
      assert.equal((await request(a, '/')).status, 200, 'inactive right after expiry');
      assert.equal((await px.stats()).planUpdates, updates, 'no plan update was involved');
      const ended = px.find('fault ended', { policy: 'shop/test', status: 'expired' });
      assert.ok(ended.length > 0, 'a "fault ended" event with status expired is logged');
    });

    it('keeps the current plan when the source delivers an equal one', async () => {
      await px.apply({ http: [httpFault({ name: 'same', abort: { status: 503, percent: 100 } })] });
      const before = await px.stats();
      await px.redeliver();
      const after = await px.stats();
      assert.equal(after.planUpdates, before.planUpdates + 1);
      assert.equal(after.planChanges, before.planChanges, 'an equal plan is not applied again');
      assert.equal((await request(a, '/')).status, 503, 'and the fault still applies');
      await px.apply({ http: [httpFault({ name: 'same', abort: { status: 502, percent: 100 } })] });
      assert.equal((await px.stats()).planChanges, before.planChanges + 1);
      assert.equal((await request(a, '/')).status, 502);
    });

    it('applies a rewritten plan file within a second', async () => {
      assert.equal((await request(a, '/')).status, 200);
      const t0 = Date.now();
      await px.write({ http: [httpFault({ name: 'live', abort: { status: 503, percent: 100 } })] });
      await waitFor('the new fault to apply', async () => (await request(a, '/')).status === 503, 1_000, 5);
      const on = Date.now() - t0;
      await px.write({ http: [] });
      await waitFor('the fault to be lifted', async () => (await request(a, '/')).status === 200, 1_000, 5);
      assert.ok(on < 1_000, `took ${on} ms`);
      assert.ok(px.find('fault started', { policy: 'shop/test' }).some((l) => (l.spec as { name?: string }).name === 'live'));
      assert.ok(px.find('fault ended', { policy: 'shop/test', status: 'removed' }).length > 0);
    });

    it('keeps the last good plan when the file becomes invalid', async () => {
      await px.apply({ http: [httpFault({ name: 'keep', abort: { status: 503, percent: 100 } })] });
      const { writeFile } = await import('node:fs/promises');
      await writeFile(px.planFile, '{"http": [{"name": 1}]}');
      await waitFor('the error to be logged', () => px.find('invalid plan file; keeping the last plan').length > 0, 2_000);
      assert.equal((await request(a, '/')).status, 503);
    });
  });

  describe('upgrades', () => {
    for (const onHttpPath of [false, true]) {
      it(`passes a WebSocket through (${onHttpPath ? 'HTTP' : 'raw'} path)`, async () => {
        await px.apply(onHttpPath ? { http: [httpFault({ name: 'x', match: { path: { exact: '/never' } }, abort: { status: 500, percent: 100 } })] } : {});
        const ws = new WebSocket(`ws://${a.host}:${a.port}/ws`);
        await new Promise((resolve, reject) => {
          ws.once('open', resolve);
          ws.once('error', reject);
        });
        const messages = ['hello', 'x'.repeat(100_000)];
        for (const m of messages) {
          const got = new Promise<string>((r) => ws.once('message', (d) => r(d.toString())));
          ws.send(m);
          assert.equal(await got, m);
        }
        ws.close();
        await new Promise((r) => ws.once('close', r));
      });
    }
  });

  describe('client aborts during a delay', () => {
    it('frees timers, sockets and memory for 10k aborted requests', async function () {
      this.timeout(120_000);
      await px.apply({ http: [httpFault({ name: 'hang', delay: { fixedMs: 30_000, jitterMs: 0, percent: 100 } })] });

      const abortMany = async (n: number): Promise<void> => {
        const batch = 250;
        for (let done = 0; done < n; done += batch) {
          const seen = (await px.stats()).requests.inbound ?? 0;
          const sockets = Array.from({ length: batch }, () => {
            const s = net.connect(a, () => s.write('GET /hang HTTP/1.1\r\nHost: x\r\n\r\n'));
            s.on('error', () => {});
            return s;
          });
          // Walk away only once the proxy has parsed every request and armed its timer.
          await waitFor('the requests to reach the proxy', async () => ((await px.stats()).requests.inbound ?? 0) >= seen + batch, 10_000, 5);
          await Promise.all(sockets.map((s) => new Promise((r) => s.once('close', r).destroy())));
        }
      };
      // The proxy's heap and timers after a forced GC (netns-proxy-probe.ts, preloaded into it).
      const settle = async (): Promise<{ heapUsed: number; timers: number }> => {
        await waitFor('proxy connections to drain', async () => (await px.stats()).openConnections === 0, 10_000);
        await sleep(50);
        return px.probe();
      };

      await abortMany(1_000); // warm-up: JIT, pools
      const before = await settle();
      const aborts0 = (await px.stats()).clientAbortsDuringDelay;

      await abortMany(10_000);
      const after = await settle();
      const heapGrowth = after.heapUsed - before.heapUsed;
      const aborted = (await px.stats()).clientAbortsDuringDelay - aborts0;

      assert.ok(aborted >= 9_900, `only ${aborted} requests were aborted during their delay`);
      assert.ok(heapGrowth < 10 * 1024 * 1024, `heap grew by ${(heapGrowth / 1048576).toFixed(1)} MB`);
      assert.ok(after.timers <= before.timers, `timers: ${after.timers} now, ${before.timers} before`);
      // The delay timers are gone, so nothing reached the app either.
      assert.equal((await px.stats()).openConnections, 0);
    });
  });

  // What images/build.ts keeps true of the bundle the images run (registered under test:datapath:compiled only).
  if (cliPath === path.join(repoRoot, 'dist', 'faultline.js'))
    describe('the compiled bundle', () => {
      it("serves a fault with its libraries inlined and Node's modules required, not imported", async () => {
        await px.apply({ http: [httpFault({ name: 'abort', abort: { status: 503, percent: 100 } })] });
        assert.equal((await request(a, '/x')).status, 503);
        const { packages, builtins } = await px.probe();
        // The libraries it loads at every start (images/build.ts's INLINED) and
        // theirs come from the bundle, and pino's transports (thread-stream)
        // are left out of it: from node_modules come only the packages left
        // external and what they depend on, such as undici's Pool, loaded by
        // path for HTTP faults (http-upstream.ts).
        const mayLoad = packageClosure(await externalPackages(), repoRoot);
        assert.deepEqual(packages.filter((p) => !mayLoad.has(p)), [], `loaded from node_modules: ${packages.join(', ')}`);
        assert.ok(packages.includes('undici'), `loaded from node_modules: ${packages.join(', ')}`);
        assert.ok(builtins.includes('http'));
        // An ESM import of node:http reads its lazy WebSocket export, which loads Node's own copy of undici.
        assert.ok(!builtins.includes('internal/deps/undici/undici'), "Node's bundled undici is loaded");
      });
    });
});

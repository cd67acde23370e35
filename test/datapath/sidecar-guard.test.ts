// The steady-state guard on the real datapath: a faultline-proxy in a pod's
// network namespace (PodProxy) in front of a real HTTP app whose health the test controls, traffic at a steady rate, and the
// guard judging what the callers see. No API server at all: the guard and the
// abort are the proxy's alone (the notice to other pods is the source's job,
// tested in test/e2e/guard.test.ts).
import assert from 'node:assert/strict';
import http from 'node:http';
import type { PlannedGuard } from '../../contract/plans.ts';
import { httpFault } from '../support/sidecar-plans.ts';
import { PodProxy, type Endpoint } from '../support/netns-proxy.ts';
import { request, sleep } from '../support/sidecar-harness.ts';

const WINDOW_MS = 2_000;
/** One request every RATE_MS: 40 requests per window. */
const RATE_MS = 50;

describe('sidecar: steady-state guard (abortWhen) on the datapath', function () {
  this.timeout(30_000);
  let server: http.Server;
  /** Status the app answers with (the workload's health). */
  let status = 200;
  /** The app sends its headers and part of the body, then drops the connection. */
  let cutOff = false;
  let px: PodProxy;
  let port: Endpoint;
  const measured: string[] = [];

  before(async () => {
    server = http.createServer((_req, res) => {
      if (cutOff) {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' });
        res.write('partial');
        setTimeout(() => res.socket?.destroy(), 5);
        return;
      }
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status === 200 ? 'ok' : 'broken');
    });
    px = await PodProxy.start();
    port = px.endpoint(await px.listen(server));
  });
  after(async () => {
    await px?.close();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    if (measured.length > 0) process.stderr.write(`[guard datapath] summary:\n  ${measured.join('\n  ')}\n`);
  });
  beforeEach(() => {
    status = 200;
    cutOff = false;
  });

  let generation = 0;
  /** A 5 ms delay on every request (the fault under test) with this guard. */
  async function applyGuarded(guard: Omit<PlannedGuard, 'chaosId' | 'uid' | 'generation'>): Promise<void> {
    generation++;
    await px.apply({
      http: [httpFault({ name: 'slow', delay: { fixedMs: 5, jitterMs: 0, percent: 100 } })],
      guards: [{ chaosId: 'shop/test', uid: 'uid-1', generation, ...guard }],
    });
  }
  const faulted = (r: { headers: http.IncomingHttpHeaders }): boolean => r.headers['x-faultline-fault'] !== undefined;

  /** Requests at RATE_MS until `stop` says so or `maxMs` passes; returns what was seen. */
  type Seen = { status: number; faulted: boolean; sent: number; at: number };
  async function traffic(maxMs: number, stop: (r: Seen) => boolean = () => false): Promise<Seen[]> {
    const seen: Seen[] = [];
    const end = Date.now() + maxMs;
    while (Date.now() < end) {
      const sent = Date.now();
      const r = await request(port, '/');
      const s = { status: r.status, faulted: faulted(r), sent, at: Date.now() };
      seen.push(s);
      if (stop(s)) break;
      await sleep(RATE_MS);
    }
    return seen;
  }

  it('a healthy workload under the fault is never aborted', async () => {
    await applyGuarded({ errorRate: { ratio: 0.2, windowMs: WINDOW_MS, minRequests: 10 }, latency: { percentile: 99, thresholdMs: 500, windowMs: WINDOW_MS, minRequests: 10 } });
    const seen = await traffic(2 * WINDOW_MS + 500);
    assert.ok(seen.length >= 20, `${seen.length} requests`);
    assert.ok(seen.every((s) => s.status === 200 && s.faulted), 'every request was faulted (delay) and answered 200');
    assert.equal((await px.stats()).aborts, 0);
  });

  it('a workload that degrades under the fault is aborted within window + 1 s, and its faults end at once', async () => {
    await applyGuarded({ errorRate: { ratio: 0.5, windowMs: WINDOW_MS, minRequests: 10 } });
    await traffic(WINDOW_MS); // a full window of healthy traffic first
    const { aborts } = await px.stats();
    status = 503;
    const degradedAt = Date.now();
    const seen = await traffic(WINDOW_MS + 3_000, (s) => !s.faulted);
    seen.push(...(await traffic(300)));
    const off = seen.find((s) => !s.faulted)!;
    assert.ok(off, `faults still on ${WINDOW_MS + 3_000} ms after the workload degraded`);
    const breach = px.find('steady-state guard breached: faults of the policy end now').at(-1);
    assert.ok(breach, 'the abort was logged');
    assert.equal(breach.status, 'aborted');
    assert.equal(breach.condition, 'errorRate');
    assert.equal(breach.chaos_id, `uid-1/${generation}`);
    assert.ok((breach.observed as number) > 50, String(breach.observed));
    const breachAt = Date.parse(breach.time as string); // the proxy logs ISO times
    // Faults off at once: no request sent after the breach was faulted.
    const lateFaulted = seen.filter((s) => s.faulted && s.sent > breachAt);
    assert.deepEqual(lateFaulted, [], 'requests sent after the breach were still faulted');
    measured.push(
      `error rate 50 % / ${WINDOW_MS} ms window: degraded → breach ${breachAt - degradedAt} ms; breach → faults off: ${lateFaulted.length} of ${seen.filter((s) => s.sent > breachAt).length} requests sent after the breach faulted; first unfaulted response ${off.at - breachAt} ms after it (one request every ${RATE_MS} ms)`,
    );
    assert.ok(off.at - degradedAt <= WINDOW_MS + 1_000, `faults off ${off.at - degradedAt} ms after the workload degraded (bound ${WINDOW_MS + 1_000})`);
    assert.equal((await px.stats()).aborts, aborts + 1);
    // Stays off while the source keeps naming that generation, even once the workload recovers.
    status = 200;
    await px.apply({ http: [httpFault({ name: 'slow', delay: { fixedMs: 6, jitterMs: 0, percent: 100 } })], guards: [{ chaosId: 'shop/test', uid: 'uid-1', generation, errorRate: { ratio: 0.5, windowMs: WINDOW_MS, minRequests: 10 } }] });
    const after = await traffic(500);
    assert.ok(after.every((s) => !s.faulted), 'an aborted generation stays off');
    assert.equal(px.find('fault ended', { status: 'aborted' }).length > 0, true, 'the fault end is logged as aborted');
    // A new generation (a person changed the policy) runs again.
    await applyGuarded({ errorRate: { ratio: 0.5, windowMs: WINDOW_MS, minRequests: 10 } });
    assert.ok((await traffic(300)).every((s) => s.faulted), 'a new generation is faulted again');
  });

  it('counts a response its upstream cuts off mid-body as a failure', async () => {
    await applyGuarded({ errorRate: { ratio: 0.5, windowMs: WINDOW_MS, minRequests: 10 } });
    const { aborts } = await px.stats();
    cutOff = true;
    let failed = 0;
    for (const end = Date.now() + WINDOW_MS + 3_000; Date.now() < end && (await px.stats()).aborts === aborts; await sleep(RATE_MS)) {
      await request(port, '/').then(
        (r) => assert.fail(`a cut-off response arrived whole: ${r.status} ${r.body}`),
        () => failed++,
      );
    }
    assert.equal((await px.stats()).aborts, aborts + 1, `no abort after ${failed} cut-off responses`);
    const breach = px.find('steady-state guard breached: faults of the policy end now').at(-1)!;
    assert.equal(breach.condition, 'errorRate');
    assert.ok(failed >= 10, `${failed} cut-off responses`);
  });

  it('the minimum request count keeps one bad request from tripping it', async () => {
    await applyGuarded({ errorRate: { ratio: 0.1, windowMs: WINDOW_MS, minRequests: 10 } });
    const { aborts } = await px.stats();
    status = 503;
    const bad = await request(port, '/');
    assert.equal(bad.status, 503);
    status = 200;
    await sleep(200);
    // 1 of 1 failed (100 % > 10 %), but one response is below minRequests; then healthy traffic dilutes it below 10 %.
    const seen = await traffic(WINDOW_MS);
    assert.ok(seen.every((s) => s.faulted), 'faults still on');
    assert.equal((await px.stats()).aborts, aborts);
  });

  it('a latency guard trips when the fault itself pushes pNN over the threshold', async () => {
    generation++;
    await px.apply({
      http: [httpFault({ name: 'slower', delay: { fixedMs: 300, jitterMs: 0, percent: 100 } })],
      guards: [{ chaosId: 'shop/test', uid: 'uid-1', generation, latency: { percentile: 90, thresholdMs: 200, windowMs: WINDOW_MS, minRequests: 5 } }],
    });
    const started = Date.now();
    const seen = await traffic(WINDOW_MS + 2_000, (s) => !s.faulted);
    assert.equal(seen.at(-1)!.faulted, false, 'aborted');
    assert.ok(seen.filter((s) => s.faulted).length >= 5, 'not before minRequests');
    const breach = px.find('steady-state guard breached: faults of the policy end now').at(-1)!;
    assert.equal(breach.condition, 'latency');
    assert.ok((breach.observed as number) >= 300, String(breach.observed));
    measured.push(`latency p90 > 200 ms under a 300 ms delay: aborted after ${seen.filter((s) => s.faulted).length} requests, ${Date.now() - started} ms`);
  });
});

import assert from 'node:assert/strict';
import { Guard, Guards, WindowStats, isErrorResponse, type Breach } from '../../sidecar/guard.ts';
import type { PlannedGuard } from '../../contract/plans.ts';

const errorGuard = (minRequests = 10): PlannedGuard => ({ chaosId: 'ns/p', uid: 'u1', generation: 3, errorRate: { ratio: 0.5, windowMs: 2_000, minRequests } });
const latencyGuard: PlannedGuard = { chaosId: 'ns/p', uid: 'u1', generation: 3, latency: { percentile: 90, thresholdMs: 200, windowMs: 2_000, minRequests: 5 } };

describe('sidecar: steady-state guard', () => {
  it('counts only the window: old responses age out', () => {
    const w = new WindowStats(1_000);
    for (let i = 0; i < 10; i++) w.add(10_000 + i * 10, i < 4, 5);
    assert.deepEqual(w.totals(10_100), { requests: 10, errors: 4 });
    assert.deepEqual(w.totals(11_300), { requests: 0, errors: 0 });
    w.add(11_300, true, 5);
    assert.deepEqual(w.totals(11_300), { requests: 1, errors: 1 });
  });

  it('reports a percentile within 5 % of the true value', () => {
    const w = new WindowStats(10_000);
    for (let i = 1; i <= 100; i++) w.add(1_000, false, i * 10); // 10..1000 ms
    const p90 = w.percentile(1_000, 90)!;
    assert.ok(p90 >= 900 && p90 <= 900 * 1.05, `p90 ${p90}`);
    const p50 = w.percentile(1_000, 50)!;
    assert.ok(p50 >= 500 && p50 <= 525, `p50 ${p50}`);
    assert.equal(new WindowStats(1_000).percentile(0, 99), undefined);
  });

  it('trips on an error rate strictly above the threshold, with enough requests', () => {
    const g = new Guard(errorGuard());
    for (let i = 0; i < 10; i++) g.observe(1_000, i % 2 === 0, 1); // exactly 50 %
    assert.equal(g.judge(1_000), undefined, 'at the threshold is not above it');
    g.observe(1_000, true, 1);
    const b = g.judge(1_000);
    assert.equal(b?.condition, 'errorRate');
    assert.equal(b?.observed, 54.5);
    assert.equal(b?.threshold, 50);
    assert.equal(b?.requests, 11);
  });

  it('the minimum request count keeps one bad request from tripping it', () => {
    const g = new Guard(errorGuard(10));
    g.observe(1_000, true, 1);
    assert.equal(g.judge(1_000), undefined, '1 of 1 failed, but 1 < minRequests');
    for (let i = 0; i < 8; i++) g.observe(1_000, true, 1);
    assert.equal(g.judge(1_000), undefined, '9 responses');
    g.observe(1_000, true, 1);
    assert.ok(g.judge(1_000), '10 responses, all failed');
  });

  it('trips on a latency percentile above the threshold', () => {
    const g = new Guard(latencyGuard);
    for (let i = 0; i < 10; i++) g.observe(1_000, false, 50);
    assert.equal(g.judge(1_000), undefined);
    for (let i = 0; i < 10; i++) g.observe(1_000, false, 300);
    const b = g.judge(1_000);
    assert.equal(b?.condition, 'latency');
    assert.ok(b!.observed >= 300 && b!.observed <= 315, String(b?.observed));
  });

  it('Guards: one breach per generation, judged even if no later response arrives; a new generation starts afresh', async () => {
    const breaches: Breach[] = [];
    const guards = new Guards((b) => breaches.push(b));
    guards.setPlan([errorGuard(2)]);
    guards.observe(['ns/p'], true, 1); // judged now: 1 < minRequests
    guards.observe(['ns/p', 'ns/p'], true, 1); // within the throttle: judged a moment later
    assert.equal(breaches.length, 0);
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(breaches.length, 1);
    assert.ok(guards.isAborted({ uid: 'u1', generation: 3 }));
    for (let i = 0; i < 20; i++) guards.observe(['ns/p'], true, 1);
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(breaches.length, 1, 'an aborted generation is not judged again');
    guards.setPlan([{ ...errorGuard(2), generation: 4 }]);
    assert.equal(guards.isAborted({ uid: 'u1', generation: 4 }), false);
    guards.stop();
  });

  it('Guards: a response counts once per policy, however its rules interleave in the list', async () => {
    const breaches: Breach[] = [];
    const guards = new Guards((b) => breaches.push(b));
    guards.setPlan([errorGuard(2)]);
    // One failed response on a port where p's rules sit apart (a plan file may list them so).
    guards.observe(['ns/p', 'ns/q', 'ns/p'], true, 1);
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(breaches.length, 0, 'one response is below minRequests 2');
    guards.observe(['ns/q', 'ns/p'], true, 1);
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(breaches.length, 1, 'the second response reaches it');
    guards.stop();
  });

  it('classifies HTTP 5xx and gRPC non-OK as errors', () => {
    assert.equal(isErrorResponse(200), false);
    assert.equal(isErrorResponse(404), false);
    assert.equal(isErrorResponse(503), true);
    assert.equal(isErrorResponse(200, 0), false);
    assert.equal(isErrorResponse(200, 14), true);
  });
});

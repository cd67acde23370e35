import assert from 'node:assert/strict';
import { kernelPlanFor, livePlanFor, mergeKernelPlan, policyExpiresAt } from '../../policies/planner.ts';
import { policy, T0 } from '../support/policies-fixtures.ts';

const MIN = 60_000;
const at = (offsetMin: number) => new Date(T0 + offsetMin * MIN).toISOString();

describe('policies: live plans', () => {
  const a = policy({
    http: [{ name: 'slow', delay: { fixed: '1.5s', jitter: '250us', percent: 30 } }, { abort: { status: 503, body: 'nope' } }],
    tcp: [{ port: 6379, toxics: [{ type: 'latency', latency: '100ms', jitter: 10 }, { type: 'slicer', average_size: 10, delay: '2ms' }] }],
  }, { name: 'a', creationTimestamp: at(0) }, { targets: ['web-0'] });
  const b = policy({ tcp: [{ port: 6379, host: 'redis', toxics: [{ type: 'latency', latency: 5 }] }], http: [{ abort: { status: 500 } }] },
    { name: 'b', creationTimestamp: at(-5) }, { targets: ['web-0', 'web-1'], startedAt: at(-1) });

  it('converts to ms and Toxiproxy units, and orders oldest policy first', () => {
    const plan = livePlanFor('web-0', [a, b], T0);
    assert.deepEqual(plan.http.map((h) => [h.chaosId, h.name]), [['shop/b', 'b/http-0'], ['shop/a', 'a/slow'], ['shop/a', 'a/http-1']]);
    assert.deepEqual(plan.http[1]!.delay, { fixedMs: 1500, jitterMs: 0.25, percent: 30 });
    assert.deepEqual(plan.http[2]!.abort, { status: 503, percent: 100, body: 'nope' });
    assert.equal(plan.http[1]!.expiresAt, T0 + 10 * MIN);
    assert.equal(plan.http[0]!.expiresAt, T0 + 9 * MIN, 'expiry counts from status.startedAt');
    const [tb, ta] = plan.tcp;
    assert.deepEqual([tb!.direction, tb!.host, tb!.toxics[0]!.name], ['outbound', 'redis', 'b.latency_downstream']);
    assert.deepEqual(ta!.toxics.map((t) => [t.name, t.attributes]), [
      ['a.latency_downstream', { latency: 100, jitter: 10 }],
      ['a.slicer_downstream', { average_size: 10, delay: 2000 }],
    ]);
  });

  it('plans gRPC faults as HTTP/2 rules for gRPC calls only: method path, grpc-status by number, or an HTTP status', () => {
    const g = policy({
      grpc: [
        { name: 'cart', match: { port: 50051, method: { exact: '/shop.Cart/AddItem' } }, delay: { fixed: '200ms' }, abort: { code: 'UNAVAILABLE', message: 'down', percent: 20 } },
        { direction: 'outbound', match: { host: 'inv', port: 9000, method: { prefix: '/shop.Inventory/' } }, abort: { httpStatus: 503 } },
      ],
    }, { name: 'g', creationTimestamp: at(0) }, { targets: ['web-0'] });
    const [cart, inv] = livePlanFor('web-0', [g], T0).http;
    assert.deepEqual({ ...cart, expiresAt: 0 }, {
      chaosId: 'shop/g', expiresAt: 0, name: 'g/cart', direction: 'inbound', protocol: 'grpc',
      match: { port: 50051, path: { exact: '/shop.Cart/AddItem' } },
      delay: { fixedMs: 200, jitterMs: 0, percent: 100 },
      abort: { status: 200, percent: 20, grpcStatus: 14, body: 'down' },
    });
    assert.deepEqual([inv!.protocol, inv!.direction, inv!.match, inv!.abort], ['grpc', 'outbound', { port: 9000, host: 'inv', path: { prefix: '/shop.Inventory/' } }, { status: 503, percent: 100 }]);
  });

  it('leaves out pods not targeted, paused, expired and invalid policies', () => {
    assert.deepEqual(livePlanFor('web-1', [a, b], T0).http.map((h) => h.chaosId), ['shop/b']);
    assert.deepEqual(livePlanFor('web-0', [{ ...a, spec: { ...a.spec, paused: true } }], T0).http, []);
    assert.deepEqual(livePlanFor('web-0', [a], T0 + 10 * MIN).http, [], 'inert at expiresAt');
    assert.equal(livePlanFor('web-0', [a], T0 + 10 * MIN - 1).http.length, 2);
    assert.deepEqual(livePlanFor('web-0', [{ ...a, spec: { ...a.spec, duration: '10' } }], T0).http, []);
  });

  it('carries the oldest targeted policy\'s time offset, for the proxy to write live', () => {
    const t1 = policy({ time: { offset: '-1h' } }, { name: 't1', creationTimestamp: at(-2) }, { targets: ['web-0'] });
    const t2 = policy({ time: { offset: '2h', containers: ['app'] } }, { name: 't2', creationTimestamp: at(-1) }, { targets: ['web-0'] });
    assert.deepEqual(livePlanFor('web-0', [t2, t1], T0).time, { chaosId: 'shop/t1', expiresAt: T0 + 8 * MIN, offsetMs: -3_600_000, containers: [] });
    assert.equal(livePlanFor('web-1', [t2, t1], T0).time, undefined);
  });

  it('computes expiresAt from startedAt, else creationTimestamp', () => {
    assert.equal(policyExpiresAt(a), T0 + 10 * MIN);
    assert.equal(policyExpiresAt(b), T0 + 9 * MIN);
    assert.equal(policyExpiresAt(policy({}, { creationTimestamp: undefined })), undefined);
  });
});

describe('policies: kernel plans and merge rules', () => {
  const pod = { metadata: { name: 'web-0', namespace: 'shop', labels: { app: 'web' } }, spec: { containers: [{ name: 'app' }, { name: 'log' }] } };
  const older = policy({
    selector: { matchLabels: { app: 'web' } },
    network: { delay: { latency: '100ms', jitter: '10ms' }, rate: '1mbit', reorder: { percent: 5 } },
    io: [{ volumePath: '/data', errno: 'EIO', percent: 10 }],
    time: { offset: '-2h' },
  }, { name: 'older', creationTimestamp: at(-10) });
  const newer = policy({
    network: { loss: { percent: 5 } }, io: [{ volumePath: '/logs', delay: '20ms' }], time: { offset: '1h', containers: ['app'] },
  }, { name: 'newer', creationTimestamp: at(0) });

  it('oldest policy owns network and time; io rules are all kept; conflicts are reported', () => {
    const { plan, conflicts } = mergeKernelPlan(pod, [newer, older], T0 - 1);
    assert.deepEqual(plan.network, {
      chaosId: 'shop/older', expiresAt: T0, experiment: 'uid-p/0', device: 'eth0',
      delay: { latencyMs: 100, jitterMs: 10, correlation: 0 }, reorder: { percent: 5, correlation: 0, gap: 0 }, rateBitsPerSec: 1_000_000,
    } as never);
    assert.deepEqual(plan.io.map((f) => [f.chaosId, f.volumePath, f.errno, f.delayMs, f.percent]), [['shop/older', '/data', 'EIO', 0, 10], ['shop/newer', '/logs', undefined, 20, 100]]);
    assert.deepEqual(plan.time, { chaosId: 'shop/older', expiresAt: T0, experiment: 'uid-p/0', offsetMs: -7_200_000, containers: ['app', 'log'] });
    assert.deepEqual(conflicts, [
      'network faults of shop/newer are not applied: the pod\'s network faults come from the older policy shop/older',
      'time offset of shop/newer is not applied: the pod\'s clock follows the older policy shop/older',
    ]);
  });

  it('expired "older" policies give way', () => {
    const plan = kernelPlanFor(pod, [newer, older], T0 + 1);
    assert.equal(plan.network?.chaosId, 'shop/newer');
    assert.deepEqual(plan.time?.containers, ['app']);
  });

  it('applies non-all modes only to pods already listed in status.targets, and respects selector and namespace', () => {
    const one = policy({ mode: { type: 'one' }, time: { offset: '1h' } }, { name: 'one' });
    assert.equal(kernelPlanFor(pod, [one], T0).time, undefined);
    assert.equal(kernelPlanFor(pod, [{ ...one, status: { targets: ['web-0'] } }], T0).time?.chaosId, 'shop/one');
    const otherApp = policy({ selector: { matchLabels: { app: 'db' } }, time: { offset: '1h' } });
    assert.equal(kernelPlanFor(pod, [otherApp], T0).time, undefined);
    assert.equal(kernelPlanFor({ ...pod, metadata: { ...pod.metadata, namespace: 'web' } }, [older], T0 - 1).time, undefined);
  });
});

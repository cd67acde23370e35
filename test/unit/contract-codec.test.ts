// The one codec of the webhook→pod contract: what the planner renders decodes
// to itself, hand-written plans get the API's defaults, and every bad field
// is named in the apiserver's wording. The cases marked "API's rule" are where
// the two parsers this codec replaced disagreed.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeHandoff, decodeInitPlan, decodeLivePlan, decodeWiring, encodeJson, PlanError } from '../../contract/codec.ts';
import { readHandoff, writeHandoff } from '../../contract/handoff.ts';
import { kernelPlanFor, livePlanFor } from '../../policies/planner.ts';
import { ERRNO_NAMES } from '../../policies/vocabulary.ts';
import { policy, T0 } from '../support/policies-fixtures.ts';

const MIN = 60_000;
const wiring = { proxyUid: 16337, capture: { inboundPort: 16006, outboundPort: 16001, proxyPorts: [16000, 16020, 16021, 16474], excludeInboundPorts: [15021], excludeInboundCidrs: [], excludeOutboundPorts: [], excludeOutboundCidrs: [] } };
const initPlan = (kernel: object) => JSON.stringify({ version: 'x', wiring, kernel });
const http = { chaosId: 'shop/a', name: 'a/slow', expiresAt: T0, direction: 'inbound', delay: { fixedMs: 10 } };

describe('contract: the plan codec', () => {
  it('decodes every plan the planner renders to exactly itself', () => {
    const live = policy({
      http: [{ name: 'slow', delay: { fixed: '1.5s', jitter: '250us', percent: 30 }, match: { path: { prefix: '/api' }, methods: ['GET'] } }, { abort: { status: 503, body: 'nope' } }],
      tcp: [{ port: 6379, host: 'redis', toxics: [{ type: 'latency', latency: '100ms', jitter: 10 }, { type: 'slicer', average_size: 10, delay: '2ms' }] }],
      grpc: [{ match: { method: { prefix: '/shop.Cart/' } }, abort: { code: 'UNAVAILABLE', message: 'down' } }, { abort: { httpStatus: 503 } }],
      time: { offset: '-1h' },
      abortWhen: { errorRate: { percent: 20, window: '30s' }, latency: { percentile: 99, threshold: '500ms', window: '1m', minRequests: 50 } },
    }, { name: 'a', creationTimestamp: new Date(T0).toISOString() }, { targets: ['web-0'] });
    const plan = livePlanFor('web-0', [live], T0);
    assert.equal(plan.http.length, 4);
    assert.deepEqual(plan.http.map((f) => [f.protocol, f.abort?.grpcStatus]), [[undefined, undefined], [undefined, undefined], ['grpc', 14], ['grpc', undefined]]);
    assert.equal(plan.guards?.length, 1);
    assert.deepEqual(decodeLivePlan(JSON.parse(encodeJson(plan))), plan);

    const pod = { metadata: { name: 'web-0', namespace: 'shop', labels: {} }, spec: { containers: [{ name: 'app' }] } };
    const kernel = kernelPlanFor(pod, [policy({
      network: { delay: { latency: '100ms', jitter: '10ms' }, rate: '1mbit', loss: { percent: 5 } },
      io: [{ volumePath: '/data', errno: 'EIO', percent: 10 }, { volumePath: '/logs', delay: '20ms', methods: ['read'] }],
      time: { offset: '2h' },
    })], T0 - MIN);
    const rendered = { version: '0.1.0', wiring: { ...wiring, toxiproxyPort: 15474 }, kernel };
    assert.deepEqual(decodeInitPlan(encodeJson(rendered)), rendered);
  });

  it('round-trips a capture wiring (what every injected pod gets), mesh included, and fills its defaults', () => {
    const capture = {
      inboundPort: 16006, outboundPort: 16001, proxyPorts: [16000, 16020, 16021, 16474],
      excludeInboundPorts: [22], excludeInboundCidrs: ['192.168.0.0/16'], excludeOutboundPorts: [5432], excludeOutboundCidrs: ['10.96.0.0/12', 'fd00::/8'],
      mesh: { kind: 'linkerd' as const, uid: 2102 },
    };
    const rendered = { version: '0.1.0', wiring: { proxyUid: 16337, capture, toxiproxyPort: 16474 }, kernel: { io: [] } };
    assert.deepEqual(decodeInitPlan(encodeJson(rendered)), rendered);
    const minimal = decodeInitPlan(JSON.stringify({ version: 'x', wiring: { proxyUid: 16337, capture: { inboundPort: 16006, outboundPort: 16001 } } }));
    assert.deepEqual(minimal.wiring.capture, { inboundPort: 16006, outboundPort: 16001, proxyPorts: [], excludeInboundPorts: [], excludeInboundCidrs: [], excludeOutboundPorts: [], excludeOutboundCidrs: [] });
  });

  it('refuses a capture wiring that cannot be rendered safely, naming the field', () => {
    const plan = (capture: object, extra: object = {}) => JSON.stringify({ version: 'x', wiring: { proxyUid: 16337, capture: { inboundPort: 16006, outboundPort: 16001, ...capture }, ...extra } });
    assert.throws(() => decodeInitPlan(plan({ excludeOutboundCidrs: ['10.0.0.0/8', '10.0.0.0/8 } ; flush ruleset'] })), /wiring\.capture\.excludeOutboundCidrs\[1\]: Invalid value: .*must be an IP address or CIDR/);
    assert.throws(() => decodeInitPlan(plan({ excludeInboundCidrs: ['fd00::/129'] })), /excludeInboundCidrs\[0\].*must be an IP address or CIDR/);
    assert.throws(() => decodeInitPlan(plan({ outboundPort: 16006 })), /outboundPort: Invalid value: 16006: must differ from inboundPort/);
    assert.throws(() => decodeInitPlan(plan({ mesh: { kind: 'istio', uid: 16337 } })), /mesh\.uid: Invalid value: 16337: must differ from proxyUid/);
    assert.throws(() => decodeInitPlan(plan({ mesh: { kind: 'consul', uid: 100 } })), /mesh\.kind: Unsupported value: "consul"/);
  });

  it('fills a hand-written live plan with the API\'s defaults', () => {
    const plan = decodeLivePlan({
      http: [{ ...http, abort: { status: 500 } }],
      tcp: [{ chaosId: 'shop/a', expiresAt: T0, direction: 'inbound', port: 80, toxics: [{ name: 't', type: 'latency' }] }],
      networkDelay: { chaosId: 'shop/n', expiresAt: T0, latencyMs: 5 },
    });
    assert.deepEqual(plan.http[0]!.delay, { fixedMs: 10, jitterMs: 0, percent: 100 });
    assert.deepEqual(plan.http[0]!.abort, { status: 500, percent: 100 });
    assert.deepEqual(plan.http[0]!.match, {});
    assert.deepEqual(plan.tcp[0]!.toxics, [{ name: 't', type: 'latency', stream: 'downstream', toxicity: 1, attributes: {} }]);
    assert.deepEqual(plan.networkDelay, { chaosId: 'shop/n', expiresAt: T0, latencyMs: 5, jitterMs: 0, correlation: 0 });
    assert.deepEqual(decodeLivePlan({}), { http: [], tcp: [] });
    assert.deepEqual(decodeLivePlan({ guards: [{ chaosId: 'shop/a', uid: 'u', errorRate: { ratio: 0.5, windowMs: 2_000 } }] }).guards,
      [{ chaosId: 'shop/a', uid: 'u', generation: 0, errorRate: { ratio: 0.5, windowMs: 2_000, minRequests: 10 } }]);
  });

  const badLive: Array<[string, unknown, RegExp]> = [
    ['not an object', [], /plan: Invalid value: \[\]: must be of type object/],
    ['a fault with neither delay nor abort', { http: [{ chaosId: 'shop/a', name: 'a/slow', expiresAt: T0, direction: 'inbound' }] }, /plan\.http\[0\]: Invalid value: "a\/slow": needs a delay or an abort/],
    ['two path kinds', { http: [{ ...http, match: { path: { exact: '/', prefix: '/' } } }] }, /plan\.http\[0\]\.match\.path: .*set exactly one of exact, prefix, regex/],
    ['a bad regex', { http: [{ ...http, match: { path: { regex: '(' } } }] }, /plan\.http\[0\]\.match\.path\.regex: Invalid value: "\(": .*Unterminated group/],
    ['an abort status below 200', { http: [{ ...http, abort: { status: 100 } }] }, /plan\.http\[0\]\.abort\.status: Invalid value: 100: must be at least 200/],
    ['a grpc-status abort on a plain HTTP rule', { http: [{ ...http, abort: { status: 200, grpcStatus: 14 } }] }, /plan\.http\[0\]\.abort\.grpcStatus: Invalid value: 14: a grpc-status abort needs protocol: grpc/],
    ['an unknown protocol', { http: [{ ...http, protocol: 'h3' }] }, /plan\.http\[0\]\.protocol: Unsupported value: "h3"/],
    ['an outbound TCP fault without host', { tcp: [{ chaosId: 'a', expiresAt: 1, direction: 'outbound', port: 1 }] }, /plan\.tcp\[0\]\.host: Required value/],
    ['duplicate toxic names', { tcp: [{ chaosId: 'a', expiresAt: 1, direction: 'inbound', port: 1, toxics: [{ name: 'x', type: 'latency' }, { name: 'x', type: 'timeout' }] }] }, /plan\.tcp\[0\]\.toxics: .*duplicate toxic name "x"/],
    ['an unknown toxic', { tcp: [{ chaosId: 'a', expiresAt: 1, direction: 'inbound', port: 1, toxics: [{ name: 'x', type: 'lag' }] }] }, /plan\.tcp\[0\]\.toxics\[0\]\.type: Unsupported value: "lag"/],
    // API's rule: instants cross the boundary as the planner renders them, epoch milliseconds.
    ['an ISO expiresAt', { http: [{ ...http, expiresAt: '2025-01-01T00:00:00Z' }] }, /plan\.http\[0\]\.expiresAt: Invalid value: "2025-01-01T00:00:00Z": must be of type integer/],
    // API's rule: a time offset is a Go duration, so both programs bound it alike.
    ['a guard with no condition', { guards: [{ chaosId: 'shop/a', uid: 'u' }] }, /plan\.guards\[0\]: Invalid value: "shop\/a": needs errorRate or latency/],
    ['a guard window under a second', { guards: [{ chaosId: 'shop/a', uid: 'u', errorRate: { ratio: 0.5, windowMs: 10 } }] }, /plan\.guards\[0\]\.errorRate\.windowMs: Invalid value: 10: must be at least 1000/],
    ['a time offset beyond a Go duration', { time: { chaosId: 'a', expiresAt: 1, offsetMs: 1e16 } }, /plan\.time\.offsetMs: Invalid value: 10000000000000000: must be at most 9223372036854/],
  ];
  for (const [name, input, message] of badLive) {
    it(`rejects a live plan with ${name}, naming the field`, () => {
      assert.throws(() => decodeLivePlan(input), (err: Error) => err instanceof PlanError && message.test(err.message));
    });
  }

  it('uses the API\'s errno list, default IO path and offset bound in FAULTLINE_PLAN too', () => {
    // EXDEV is a real errno name, but not one an IO fault may return.
    assert.ok(!(ERRNO_NAMES as readonly string[]).includes('EXDEV'));
    assert.throws(() => decodeInitPlan(initPlan({ io: [{ chaosId: 'a', expiresAt: 1, volumePath: '/d', errno: 'EXDEV' }] })), /kernel\.io\[0\]\.errno: Unsupported value: "EXDEV"/);
    for (const errno of ERRNO_NAMES) decodeInitPlan(initPlan({ io: [{ chaosId: 'a', expiresAt: 1, volumePath: '/d', errno }] }));
    assert.equal(decodeInitPlan(initPlan({ io: [{ chaosId: 'a', expiresAt: 1, volumePath: '/var/data//', errno: 'EIO' }] })).kernel.io[0]!.path, '/var/data/**');
    assert.equal(decodeInitPlan(initPlan({ io: [{ chaosId: 'a', expiresAt: 1, volumePath: '/', errno: 'EIO' }] })).kernel.io[0]!.path, '/**');
    assert.equal(decodeInitPlan(initPlan({ time: { chaosId: 'a', expiresAt: 1, offsetMs: -9_223_372_036_854 } })).kernel.time!.offsetMs, -9_223_372_036_854);
    assert.throws(() => decodeInitPlan(initPlan({ time: { chaosId: 'a', expiresAt: 1, offsetMs: -1e16 } })), /kernel\.time\.offsetMs: Invalid value: -10000000000000000: must be at least -9223372036854/);
    assert.throws(() => decodeInitPlan(initPlan({ time: { chaosId: 'a', expiresAt: '2025-01-01T00:00:00Z', offsetMs: 1 } })), /kernel\.time\.expiresAt: .*must be of type integer/);
  });

  it('lists every bad field at once, and names the source', () => {
    assert.throws(
      () => decodeInitPlan(initPlan({ network: { chaosId: '', expiresAt: -1 } }), '--plan-file p.json'),
      (err: Error) => err instanceof PlanError
        && /^invalid plan in --plan-file p\.json: kernel\.network\.chaosId: Invalid value: "": must not be empty; kernel\.network\.expiresAt: Invalid value: -1: must be at least 0/.test(err.message),
    );
    assert.throws(() => decodeInitPlan('[1]'), /FAULTLINE_PLAN must be a JSON object/);
  });

  it('decodes a wiring on its own or inside a whole plan, by the same rules', () => {
    assert.deepEqual(decodeWiring(JSON.stringify(wiring), 'w.json'), wiring);
    assert.deepEqual(decodeWiring(initPlan({}), 'p.json'), wiring);
    // Every pod is captured: a wiring without capture is not one the webhook writes.
    assert.throws(() => decodeWiring(JSON.stringify({ proxyUid: 0 }), 'w.json'), /invalid wiring in w\.json: wiring\.capture: Required value/);
    assert.throws(() => decodeWiring(JSON.stringify({ capture: wiring.capture }), 'w.json'), /wiring\.proxyUid: Required value/);
    // Plans rendered before the fixed listeners were removed carry them empty: still read, and dropped.
    assert.deepEqual(decodeWiring(JSON.stringify({ ...wiring, inbound: [], outbound: [], excludeInboundPorts: [] }), 'w.json'), wiring);
    // One that still wires ports that way would lose them: refused, naming the field.
    assert.throws(() => decodeWiring(JSON.stringify({ ...wiring, inbound: [{ port: 8080, listenPort: 15100 }] }), 'w.json'), /wiring\.inbound: Invalid value: "1 listeners": fixed listeners were removed/);
    assert.throws(() => decodeWiring(JSON.stringify({ ...wiring, toxiproxyPort: 70000 }), 'w.json'), /wiring\.toxiproxyPort: Invalid value: 70000/);
  });

  describe('the hand-off file', () => {
    let dir: string;
    beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'faultline-handoff-'))));
    afterEach(() => rm(dir, { recursive: true, force: true }));

    it('round-trips through the file, reads a missing file as "nothing handed off", and names a bad one', async () => {
      const networkDelay = { chaosId: 'shop/n', expiresAt: T0, latencyMs: 50, jitterMs: 5, correlation: 0 };
      const file = await writeHandoff(dir, { networkDelay });
      assert.equal(await readFile(file, 'utf8'), `${JSON.stringify({ networkDelay })}\n`);
      assert.deepEqual(await readHandoff(file), networkDelay);
      assert.equal(await readHandoff(await writeHandoff(dir, {})), undefined);
      assert.equal(await readHandoff(join(dir, 'absent.json')), undefined);
      assert.throws(() => decodeHandoff('{"networkDelay":{"chaosId":"a","expiresAt":1}}', 'h.json'), /^Error: h\.json: handoff\.networkDelay\.latencyMs: Required value$/);
      assert.throws(() => decodeHandoff('{', 'h.json'), /h\.json is not valid JSON/);
    });
  });
});

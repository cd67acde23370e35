import assert from 'node:assert/strict';
import { applyDefaults } from '../../policies/defaults.ts';
import type { ChaosPolicySpec } from '../../policies/types.ts';
import { validatePolicy, validateTenant, inspectPolicy } from '../../policies/validate.ts';
import { policy, tenant } from '../support/policies-fixtures.ts';

const delay = { match: { port: 8080 }, delay: { fixed: '100ms' } };

/** [what, spec, expected path, message pattern] */
const invalid: Array<[string, Record<string, unknown>, string, RegExp]> = [
  ['missing duration', { duration: undefined, http: [delay] }, 'spec.duration', /Required value/],
  ['duration without unit', { duration: '10', http: [delay] }, 'spec.duration', /missing unit/],
  ['duration in days', { duration: '1d', http: [delay] }, 'spec.duration', /unknown unit "d"/],
  ['zero duration', { duration: '0s', http: [delay] }, 'spec.duration', /greater than zero/],
  ['no fault at all', {}, 'spec.http|grpc|tcp|network|io|time', /Required value/],
  ['grpc fault with neither delay nor abort', { grpc: [{ match: { method: { exact: '/a.B/C' } } }] }, 'spec.grpc[0].delay|abort', /Required/],
  ['grpc abort with both code and httpStatus', { grpc: [{ abort: { code: 'UNAVAILABLE', httpStatus: 503 } }] }, 'spec.grpc[0].abort', /exactly one of code, httpStatus/],
  ['grpc abort with neither code nor httpStatus', { grpc: [{ abort: { percent: 5 } }] }, 'spec.grpc[0].abort', /exactly one of code, httpStatus/],
  ['grpc message without code', { grpc: [{ abort: { httpStatus: 503, message: 'x' } }] }, 'spec.grpc[0].abort.message', /goes with code/],
  ['unknown grpc code', { grpc: [{ abort: { code: 'BROKEN' } }] }, 'spec.grpc[0].abort.code', /Unsupported value: "BROKEN"/],
  ['grpc code OK (no abort)', { grpc: [{ abort: { code: 'OK' } }] }, 'spec.grpc[0].abort.code', /Unsupported value: "OK"/],
  ['grpc method that is no method path', { grpc: [{ match: { method: { exact: 'shop.Cart.AddItem' } }, delay: { fixed: '1s' } }] }, 'spec.grpc[0].match.method.exact', /\/pkg.Service\/Method/],
  ['grpc method prefix without slash', { grpc: [{ match: { method: { prefix: 'shop.Cart/' } }, delay: { fixed: '1s' } }] }, 'spec.grpc[0].match.method.prefix', /start with "\/"/],
  ['grpc method with two matchers', { grpc: [{ match: { method: { exact: '/a.B/C', prefix: '/a' } }, delay: { fixed: '1s' } }] }, 'spec.grpc[0].match.method', /exactly one/],
  ['outbound grpc fault without host', { grpc: [{ direction: 'outbound', match: { port: 50051 }, delay: { fixed: '1s' } }] }, 'spec.grpc[0].match.host', /upstream host/],
  ['duplicate grpc rule names', { grpc: [{ name: 'a', delay: { fixed: '1s' } }, { name: 'a', abort: { code: 'INTERNAL' } }] }, 'spec.grpc', /unique/],
  ['unknown mode', { mode: { type: 'two' }, http: [delay] }, 'spec.mode.type', /Unsupported value: "two": supported values: "one", "all"/],
  ['fixed without value', { mode: { type: 'fixed' }, http: [delay] }, 'spec.mode.value', /Required value/],
  ['fixed with a fraction', { mode: { type: 'fixed', value: 1.5 }, http: [delay] }, 'spec.mode.value', /whole number/],
  ['fixed-percent over 100', { mode: { type: 'fixed-percent', value: 150 }, http: [delay] }, 'spec.mode.value', /\(0,100\]/],
  ['one with a value', { mode: { type: 'one', value: 3 }, http: [delay] }, 'spec.mode.value', /Forbidden/],
  ['In without values', { selector: { matchExpressions: [{ key: 'a', operator: 'In' }] }, http: [delay] }, 'spec.selector.matchExpressions[0].values', /non-empty/],
  ['Exists with values', { selector: { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] }, http: [delay] }, 'spec.selector.matchExpressions[0].values', /must be empty/],
  ['percent 0', { http: [{ delay: { fixed: '1s', percent: 0 } }] }, 'spec.http[0].delay.percent', /greater than 0/],
  ['percent over 100', { http: [{ abort: { status: 503, percent: 101 } }] }, 'spec.http[0].abort.percent', /at most 100/],
  ['status 600', { http: [{ abort: { status: 600 } }] }, 'spec.http[0].abort.status', /at most 599/],
  ['status 199', { http: [{ abort: { status: 199 } }] }, 'spec.http[0].abort.status', /at least 200/],
  ['port 0', { http: [{ match: { port: 0 }, delay: { fixed: '1s' } }] }, 'spec.http[0].match.port', /at least 1/],
  ['port 65536', { tcp: [{ port: 65536, toxics: [{ type: 'latency', latency: 1 }] }] }, 'spec.tcp[0].port', /at most 65535/],
  ['http rule with nothing to do', { http: [{ match: { port: 80 } }] }, 'spec.http[0].delay|abort', /Required/],
  ['bad delay', { http: [{ delay: { fixed: 'soon' } }] }, 'spec.http[0].delay.fixed', /invalid duration/],
  ['negative delay', { http: [{ delay: { fixed: '-1s' } }] }, 'spec.http[0].delay.fixed', /negative/],
  ['outbound without host', { http: [{ direction: 'outbound', match: { port: 80 }, delay: { fixed: '1s' } }] }, 'spec.http[0].match.host', /upstream host/],
  ['outbound without port', { http: [{ direction: 'outbound', match: { host: 'db' }, delay: { fixed: '1s' } }] }, 'spec.http[0].match.port', /upstream port/],
  ['inbound with host', { http: [{ match: { host: 'db' }, delay: { fixed: '1s' } }] }, 'spec.http[0].match.host', /outbound faults only/],
  ['regex that does not compile', { http: [{ match: { path: { regex: '(' } }, delay: { fixed: '1s' } }] }, 'spec.http[0].match.path.regex', /does not compile/],
  ['two path matchers', { http: [{ match: { path: { exact: '/a', prefix: '/b' } }, delay: { fixed: '1s' } }] }, 'spec.http[0].match.path', /exactly one/],
  ['lower-case method', { http: [{ match: { methods: ['get'] }, delay: { fixed: '1s' } }] }, 'spec.http[0].match.methods[0]', /upper-case/],
  ['duplicate rule names', { http: [{ name: 'a', ...delay }, { name: 'a', ...delay }] }, 'spec.http', /unique/],
  ['unknown toxic', { tcp: [{ port: 1, toxics: [{ type: 'latencyy' }] }] }, 'spec.tcp[0].toxics[0].type', /Unsupported value/],
  ['latency toxic without latency', { tcp: [{ port: 1, toxics: [{ type: 'latency' }] }] }, 'spec.tcp[0].toxics[0].latency', /needs latency/],
  ['attribute of another toxic', { tcp: [{ port: 1, toxics: [{ type: 'bandwidth', rate: 10, latency: 5 }] }] }, 'spec.tcp[0].toxics[0].latency', /not an attribute of toxic bandwidth/],
  ['toxicity over 1', { tcp: [{ port: 1, toxics: [{ type: 'latency', latency: 1, toxicity: 1.5 }] }] }, 'spec.tcp[0].toxics[0].toxicity', /at most 1/],
  ['time attribute of wrong type', { tcp: [{ port: 1, toxics: [{ type: 'latency', latency: true }] }] }, 'spec.tcp[0].toxics[0].latency', /integer or a string/],
  ['bad time attribute string', { tcp: [{ port: 1, toxics: [{ type: 'latency', latency: '5 sec' }] }] }, 'spec.tcp[0].toxics[0].latency', /unknown unit/],
  ['unknown stream', { tcp: [{ port: 1, toxics: [{ type: 'latency', latency: 1, stream: 'both' }] }] }, 'spec.tcp[0].toxics[0].stream', /Unsupported/],
  ['duplicate toxic names', { tcp: [{ port: 1, toxics: [{ type: 'latency', latency: 1, name: 'x' }, { type: 'timeout', timeout: 1, name: 'x' }] }] }, 'spec.tcp[0].toxics', /unique/],
  ['one port twice', { tcp: [{ port: 1, toxics: [{ type: 'latency', latency: 1 }] }, { port: 1, toxics: [{ type: 'timeout', timeout: 1 }] }] }, 'spec.tcp[1].port', /spec.tcp\[0\] already faults/],
  ['no toxics', { tcp: [{ port: 1, toxics: [] }] }, 'spec.tcp[0].toxics', /at least 1 item/],
  ['empty network', { network: { device: 'eth0' } }, 'spec.network.delay|loss|duplicate|corrupt|reorder|rate', /Required/],
  ['bad rate', { network: { rate: '1mb' } }, 'spec.network.rate', /unknown rate unit "mb"/],
  ['reorder without delay', { network: { reorder: { percent: 10 } } }, 'spec.network.reorder', /set network.delay/],
  ['correlation over 100', { network: { loss: { percent: 1, correlation: 101 } } }, 'spec.network.loss.correlation', /at most 100/],
  ['bad device', { network: { rate: '1mbit', device: 'eth0; rm -rf' } }, 'spec.network.device', /interface name/],
  ['unknown errno', { io: [{ volumePath: '/data', errno: 'EFOO' }] }, 'spec.io[0].errno', /Unsupported value: "EFOO"/],
  ['relative volumePath', { io: [{ volumePath: 'data', errno: 'EIO' }] }, 'spec.io[0].volumePath', /absolute/],
  ['path outside the volume', { io: [{ volumePath: '/data', path: '/etc/**', errno: 'EIO' }] }, 'spec.io[0].path', /under volumePath/],
  ['io with neither errno nor delay', { io: [{ volumePath: '/data' }] }, 'spec.io[0].errno|delay', /errno, adds a delay/],
  ['unknown io method', { io: [{ volumePath: '/data', errno: 'EIO', methods: ['seek'] }] }, 'spec.io[0].methods[0]', /Unsupported/],
  ['zero time offset', { time: { offset: '0s' } }, 'spec.time.offset', /greater than zero/],
  ['time offset in days', { time: { offset: '-1d' } }, 'spec.time.offset', /unknown unit/],
  ['string where an object goes', { http: 'slow' }, 'spec.http', /must be of type array/],
];

describe('policies: validatePolicy', () => {
  for (const [what, spec, path, message] of invalid) {
    it(`rejects ${what} at ${path}`, () => {
      const errors = validatePolicy(policy(spec as Partial<ChaosPolicySpec>));
      const hit = errors.find((e) => e.path === path);
      assert.ok(hit, `no error at ${path}; got ${JSON.stringify(errors)}`);
      assert.match(hit.message, message);
    });
  }

  it('accepts the DESIGN.md example and every fault family', () => {
    const spec: ChaosPolicySpec = {
      selector: { matchLabels: { app: 'checkout' } },
      mode: { type: 'fixed-percent', value: 50 },
      duration: '10m',
      http: [{ match: { port: 8080, path: { prefix: '/api' }, methods: ['GET'], headers: { 'x-canary': '1' } }, delay: { fixed: '200ms', jitter: '50ms', percent: 30 }, abort: { status: 503, percent: 5 } },
        { direction: 'outbound', match: { host: 'payments', port: 443 }, abort: { status: 500 } }],
      grpc: [{ match: { port: 50051, method: { exact: '/shop.Cart/AddItem' }, headers: { 'x-canary': '1' } }, delay: { fixed: '100ms', percent: 50 }, abort: { code: 'UNAVAILABLE', message: 'chaos', percent: 10 } },
        { direction: 'outbound', match: { host: 'inventory', port: 50051, method: { prefix: '/shop.Inventory/' } }, abort: { httpStatus: 503 } }],
      tcp: [{ port: 6379, toxics: [{ type: 'latency', latency: '100ms', jitter: 10, stream: 'downstream', toxicity: 1 }, { type: 'slicer', average_size: 64, delay: '10us' }] },
        { port: 5432, host: 'db', toxics: [{ type: 'reset_peer' }, { type: 'limit_data', bytes: 1000 }, { type: 'bandwidth', rate: 100 }, { type: 'slow_close', delay: 5 }, { type: 'timeout', timeout: 0 }] }],
      network: { delay: { latency: '100ms', jitter: '10ms', correlation: 25 }, loss: { percent: 5 }, duplicate: { percent: 1 }, corrupt: { percent: 1 }, reorder: { percent: 10, gap: 5 }, rate: '1mbit' },
      io: [{ volumePath: '/data', path: '/data/**', methods: ['read', 'write'], errno: 'EIO', delay: '20ms', percent: 10 }],
      time: { offset: '-2h', containers: ['app'] },
    };
    assert.deepEqual(validatePolicy(policy(spec)), []);
  });

  it('treats YAML nulls as absent, as the apiserver does', () => {
    assert.deepEqual(validatePolicy(policy({ http: [{ delay: { fixed: '1s', jitter: null as unknown as string } }], network: null as unknown as undefined })), []);
  });

  it('reports fields the apiserver would prune, without failing', () => {
    const r = inspectPolicy(policy({ http: [{ delay: { fixed: '1s' }, dealy: {} } as never] }));
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.unknownFields, ['spec.http[0].dealy']);
  });

  it('rejects objects that are not policies at all', () => {
    assert.deepEqual(validatePolicy(null).map((e) => e.path), ['']);
    assert.deepEqual(validatePolicy({ metadata: {} }).map((e) => e.path), ['spec']);
    assert.deepEqual(validatePolicy({ spec: { duration: '1m', time: { offset: '1h' } } }).map((e) => e.path), ['metadata']);
  });
});

describe('policies: validateTenant', () => {
  it('accepts a full tenant', () => {
    assert.deepEqual(validateTenant(tenant({ kinds: ['http.delay', 'tcp.latency', 'network.loss'], privileged: true, limits: { maxDelay: '2s', maxDuration: '1h', maxTimeOffset: '2h', abortCodes: [503] } },
      { subjects: [{ kind: 'Group', name: 'sre' }, { kind: 'ServiceAccount', name: 'ci' }] })), []);
  });
  const cases: Array<[string, unknown, string, RegExp]> = [
    ['unknown kind', tenant({ kinds: ['http.slow'] }), 'spec.allow.kinds[0]', /Unsupported value: "http.slow"/],
    ['no namespaces', tenant({ kinds: [] }, { namespaces: [] }), 'spec.namespaces|namespaceSelector', /by name, by selector/],
    ['bad maxDelay', tenant({ kinds: [], limits: { maxDelay: '2' } }), 'spec.allow.limits.maxDelay', /missing unit/],
    ['namespace on a User', tenant({ kinds: [] }, { subjects: [{ kind: 'User', name: 'a', namespace: 'x' }] }), 'spec.subjects[0].namespace', /ServiceAccount subjects only/],
    ['no allow', { apiVersion: 'x', kind: 'ChaosTenant', metadata: { name: 't' }, spec: { namespaces: ['a'] } }, 'spec.allow', /Required value/],
  ];
  for (const [what, t, path, message] of cases) {
    it(`rejects ${what}`, () => {
      const hit = validateTenant(t).find((e) => e.path === path);
      assert.ok(hit, JSON.stringify(validateTenant(t)));
      assert.match(hit.message, message);
    });
  }
});

describe('policies: applyDefaults', () => {
  it('fills every documented default', () => {
    const d = applyDefaults({
      duration: '1m',
      http: [{ delay: { fixed: '1s' }, abort: { status: 503 } }],
      tcp: [{ port: 1, toxics: [{ type: 'latency', latency: 1 }, { type: 'latency', latency: 2 }, { type: 'latency', latency: 3, name: 'latency_downstream_3' }] }],
      network: { loss: { percent: 1 }, reorder: { percent: 1 }, delay: { latency: '1ms' } },
      io: [{ volumePath: '/data/', errno: 'EIO' }],
      time: { offset: '1h' },
    });
    assert.deepEqual(d.mode, { type: 'all' });
    assert.deepEqual(d.selector, {});
    assert.equal(d.paused, false);
    assert.deepEqual(d.http[0], { name: 'http-0', direction: 'inbound', match: {}, delay: { fixed: '1s', jitter: '0s', percent: 100 }, abort: { status: 503, percent: 100 } });
    assert.deepEqual(d.tcp[0]!.toxics.map((t) => [t.name, t.stream, t.toxicity]), [
      ['latency_downstream', 'downstream', 1], ['latency_downstream_2', 'downstream', 1], ['latency_downstream_3', 'downstream', 1],
    ]);
    assert.deepEqual(d.network, { device: 'eth0', loss: { percent: 1, correlation: 0 }, reorder: { percent: 1, correlation: 0 }, delay: { latency: '1ms', jitter: '0s', correlation: 0 } });
    assert.equal(d.io[0]!.path, '/data/**');
    assert.equal(d.io[0]!.methods.length, 11);
    assert.equal(d.io[0]!.percent, 100);
    assert.deepEqual(d.time, { offset: '1h', containers: [] });
  });
});

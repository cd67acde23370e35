import assert from 'node:assert/strict';
import { checkAllowlist, formatDenial, type Violation } from '../../policies/allowlist.ts';
import { applyDefaults } from '../../policies/defaults.ts';
import type { ChaosPolicySpec, TenantLimits } from '../../policies/types.ts';
import { validatePolicy } from '../../policies/validate.ts';
import { admissionVerdict } from '../../policies/verdict.ts';
import { FAULT_KINDS, familyOf, PRIVILEGED_FAMILIES } from '../../policies/vocabulary.ts';
import { policy, tenant } from '../support/policies-fixtures.ts';

/** The smallest spec that uses exactly one fault kind. */
function specUsing(kind: string): Partial<ChaosPolicySpec> {
  const [family, fault] = kind.split('.') as [string, string];
  switch (family) {
    case 'http':
      return { http: [fault === 'delay' ? { delay: { fixed: '1s' } } : { abort: { status: 503 } }] };
    case 'grpc':
      return { grpc: [fault === 'delay' ? { delay: { fixed: '1s' } } : { abort: { code: 'UNAVAILABLE' } }] };
    case 'tcp': {
      const attrs: Record<string, Record<string, number>> = {
        latency: { latency: 10 }, bandwidth: { rate: 100 }, slow_close: { delay: 10 }, timeout: { timeout: 10 }, reset_peer: {}, slicer: { average_size: 10 }, limit_data: { bytes: 10 },
      };
      return { tcp: [{ port: 6379, toxics: [{ type: fault as never, ...attrs[fault] }] }] };
    }
    case 'network':
      return { network: fault === 'rate' ? { rate: '1mbit' } : fault === 'delay' ? { delay: { latency: '10ms' } } : { [fault]: { percent: 5 } } };
    case 'io':
      return { io: [fault === 'error' ? { volumePath: '/data', errno: 'EIO' } : { volumePath: '/data', delay: '10ms' }] };
    default:
      return { time: { offset: '1h' } };
  }
}

function check(spec: Partial<ChaosPolicySpec>, allow: Parameters<typeof tenant>[0]): Violation[] {
  const p = policy(spec);
  assert.deepEqual(validatePolicy(p), [], 'fixture must be valid');
  return checkAllowlist(applyDefaults(p.spec), tenant(allow), { username: 'jane' }, 'shop');
}

describe('policies: allowlist matrix', () => {
  for (const kind of FAULT_KINDS) {
    // network.reorder needs a delay alongside; it is exercised with it.
    const spec = kind === 'network.reorder' ? { network: { delay: { latency: '1ms' }, reorder: { percent: 5 } } } : specUsing(kind);
    const extra = kind === 'network.reorder' ? ['network.delay'] : [];
    const privileged = PRIVILEGED_FAMILIES.includes(familyOf(kind));
    it(`${kind}: allowed when listed${privileged ? ' and privileged' : ''}`, () => {
      assert.deepEqual(check(spec, { kinds: [kind, ...extra], privileged: true }), []);
    });
    it(`${kind}: denied when not listed`, () => {
      const v = check(spec, { kinds: ['http.delay', ...extra].filter((k) => k !== kind), privileged: true });
      assert.deepEqual(v.map((x) => [x.reason, x.kind]), [['kind', kind]]);
    });
    if (privileged) {
      it(`${kind}: denied without allow.privileged`, () => {
        const v = check(spec, { kinds: [kind, ...extra] });
        assert.deepEqual(v.map((x) => x.reason), ['privileged']);
        assert.match(v[0]!.path, new RegExp(`^spec\\.${familyOf(kind)}$`));
      });
    }
  }
});

/** [limit, value at the limit, spec at the limit, spec over it, path, message] */
const limitCases: Array<[string, TenantLimits, Partial<ChaosPolicySpec>, Partial<ChaosPolicySpec>, string, RegExp]> = [
  ['maxDelay (http fixed)', { maxDelay: '2s' }, { http: [{ delay: { fixed: '2s' } }] }, { http: [{ delay: { fixed: '5s' } }] }, 'spec.http[0].delay.fixed', /^spec.http\[0\].delay.fixed 5s exceeds the tenant maximum of 2s$/],
  ['maxDelay (http fixed+jitter)', { maxDelay: '2s' }, { http: [{ delay: { fixed: '1s', jitter: '1000ms' } }] }, { http: [{ delay: { fixed: '1s', jitter: '1001ms' } }] }, 'spec.http[0].delay', /1s \+ jitter 1001ms exceeds the tenant maximum of 2s/],
  ['maxDelay (tcp latency+jitter)', { maxDelay: '100ms' }, { tcp: [{ port: 1, toxics: [{ type: 'latency', latency: 90, jitter: '10ms' }] }] }, { tcp: [{ port: 1, toxics: [{ type: 'latency', latency: 91, jitter: '10ms' }] }] }, 'spec.tcp[0].toxics[0]', /91ms \+ jitter 10ms exceeds the tenant maximum of 100ms/],
  ['maxDelay (network)', { maxDelay: '100ms' }, { network: { delay: { latency: '100ms' } } }, { network: { delay: { latency: '101ms' } } }, 'spec.network.delay.latency', /101ms exceeds/],
  ['maxDelay (io)', { maxDelay: '100ms' }, { io: [{ volumePath: '/d', delay: '100ms' }] }, { io: [{ volumePath: '/d', delay: '0.2s' }] }, 'spec.io[0].delay', /0.2s exceeds the tenant maximum of 100ms/],
  ['maxLossPercent', { maxLossPercent: 5 }, { network: { loss: { percent: 5 } } }, { network: { loss: { percent: 5.5 } } }, 'spec.network.loss.percent', /5.5% exceeds the tenant maximum of 5%/],
  ['abortCodes', { abortCodes: [503, 500] }, { http: [{ abort: { status: 503 } }] }, { http: [{ abort: { status: 418 } }] }, 'spec.http[0].abort.status', /418 is not among the tenant's abort codes \(503, 500\)/],
  ['maxDelay (grpc)', { maxDelay: '2s' }, { grpc: [{ delay: { fixed: '2s' } }] }, { grpc: [{ delay: { fixed: '3s' } }] }, 'spec.grpc[0].delay.fixed', /^spec.grpc\[0\].delay.fixed 3s exceeds the tenant maximum of 2s$/],
  ['abortCodes (grpc httpStatus)', { abortCodes: [503] }, { grpc: [{ abort: { httpStatus: 503 } }] }, { grpc: [{ abort: { httpStatus: 500 } }] }, 'spec.grpc[0].abort.httpStatus', /500 is not among the tenant's abort codes \(503\)/],
  ['grpcAbortCodes', { grpcAbortCodes: ['UNAVAILABLE'] }, { grpc: [{ abort: { code: 'UNAVAILABLE' } }] }, { grpc: [{ abort: { code: 'INTERNAL' } }] }, 'spec.grpc[0].abort.code', /INTERNAL is not among the tenant's gRPC abort codes \(UNAVAILABLE\)/],
  ['maxPercent (grpc)', { maxPercent: 30 }, { grpc: [{ abort: { code: 'ABORTED', percent: 30 } }] }, { grpc: [{ abort: { code: 'ABORTED', percent: 31 } }] }, 'spec.grpc[0].abort.percent', /31% exceeds the tenant maximum of 30%/],
  ['maxPercent (http)', { maxPercent: 30 }, { http: [{ delay: { fixed: '1s', percent: 30 } }] }, { http: [{ delay: { fixed: '1s', percent: 31 } }] }, 'spec.http[0].delay.percent', /31% exceeds the tenant maximum of 30%/],
  ['maxPercent (default 100)', { maxPercent: 30 }, { http: [{ abort: { status: 500, percent: 30 } }] }, { http: [{ abort: { status: 500 } }] }, 'spec.http[0].abort.percent', /100% exceeds/],
  ['maxPercent (toxicity)', { maxPercent: 50 }, { tcp: [{ port: 1, toxics: [{ type: 'reset_peer', toxicity: 0.5 }] }] }, { tcp: [{ port: 1, toxics: [{ type: 'reset_peer', toxicity: 0.6 }] }] }, 'spec.tcp[0].toxics[0].toxicity', /0.6 \(60%\) exceeds the tenant maximum of 50%/],
  ['maxPercent (io)', { maxPercent: 10 }, { io: [{ volumePath: '/d', errno: 'EIO', percent: 10 }] }, { io: [{ volumePath: '/d', errno: 'EIO', percent: 11 }] }, 'spec.io[0].percent', /11%/],
  ['maxDuration', { maxDuration: '1h' }, { duration: '60m', http: [{ abort: { status: 500 } }] }, { duration: '1h1s', http: [{ abort: { status: 500 } }] }, 'spec.duration', /1h1s exceeds the tenant maximum of 1h/],
  ['maxPodPercent (fixed-percent)', { maxPodPercent: 50 }, { mode: { type: 'fixed-percent', value: 50 }, http: [{ abort: { status: 500 } }] }, { mode: { type: 'fixed-percent', value: 51 }, http: [{ abort: { status: 500 } }] }, 'spec.mode', /51% of the selected pods\) exceeds the tenant maximum of 50%/],
  ['maxPodPercent (all)', { maxPodPercent: 50 }, { mode: { type: 'one' }, http: [{ abort: { status: 500 } }] }, { http: [{ abort: { status: 500 } }] }, 'spec.mode', /all \(100% of the selected pods\)/],
  ['maxTimeOffset', { maxTimeOffset: '2h' }, { time: { offset: '-2h' } }, { time: { offset: '-2h1m' } }, 'spec.time.offset', /-2h1m exceeds the tenant maximum of 2h either way/],
  ['minBandwidthKBps (tcp)', { minBandwidthKBps: 100 }, { tcp: [{ port: 1, toxics: [{ type: 'bandwidth', rate: 100 }] }] }, { tcp: [{ port: 1, toxics: [{ type: 'bandwidth', rate: 99 }] }] }, 'spec.tcp[0].toxics[0].rate', /99 KB\/s is below the tenant minimum bandwidth of 100 KB\/s/],
  ['minBandwidthKBps (network)', { minBandwidthKBps: 100 }, { network: { rate: '800kbit' } }, { network: { rate: '799kbit' } }, 'spec.network.rate', /799kbit \(99.875 KB\/s\) is below/],
];

describe('policies: allowlist limits', () => {
  for (const [name, limits, atLimit, overLimit, path, message] of limitCases) {
    const allow = { kinds: [...FAULT_KINDS], privileged: true, limits };
    it(`${name}: at the limit passes`, () => assert.deepEqual(check(atLimit, allow), []));
    it(`${name}: over the limit names ${path} and the limit`, () => {
      const v = check(overLimit, allow);
      assert.equal(v.length, 1, JSON.stringify(v));
      assert.equal(v[0]!.reason, 'limit');
      assert.equal(v[0]!.path, path);
      assert.match(v[0]!.message, message);
    });
  }
});

describe('policies: authors', () => {
  const subjects = [{ kind: 'User' as const, name: 'jane' }, { kind: 'Group' as const, name: 'sre' }, { kind: 'ServiceAccount' as const, name: 'ci' }, { kind: 'ServiceAccount' as const, name: 'deployer', namespace: 'ops' }];
  const t = tenant({ kinds: ['http.abort'] }, { subjects });
  const spec = applyDefaults(policy({ http: [{ abort: { status: 500 } }] }).spec);
  const cases: Array<[string, string[], boolean]> = [
    ['jane', [], true], ['bob', ['sre'], true], ['bob', ['dev'], false],
    ['system:serviceaccount:shop:ci', [], true], ['system:serviceaccount:other:ci', [], false],
    ['system:serviceaccount:ops:deployer', [], true], ['system:serviceaccount:shop:deployer', [], false],
  ];
  for (const [username, groups, ok] of cases) {
    it(`${username} (${groups.join(',') || 'no groups'}) is ${ok ? 'allowed' : 'denied'}`, () => {
      const v = checkAllowlist(spec, t, { username, groups }, 'shop');
      assert.deepEqual(v.map((x) => x.reason), ok ? [] : ['subject']);
    });
  }
  it('anyone may author when the tenant lists no subjects', () => {
    assert.deepEqual(checkAllowlist(spec, tenant({ kinds: ['http.abort'] }), { username: 'x' }, 'shop'), []);
  });
});

describe('policies: formatDenial and admissionVerdict', () => {
  const shop = tenant({ kinds: ['http.delay', 'http.abort', 'tcp.latency'], limits: { maxDelay: '2s' } });
  const ns = { name: 'shop', labels: { 'faultline.dev/chaos': 'enabled' } };

  it('prints DESIGN.md\'s denial, every violation joined by "; "', () => {
    const v = admissionVerdict({
      policy: policy({ http: [{ match: { port: 8080 }, delay: { fixed: '5s' } }], network: { loss: { percent: 5 } } }),
      namespace: ns, tenants: [shop], user: { username: 'jane' },
    });
    assert.equal(v.allowed, false);
    assert.equal(v.message, 'tenant "shop" does not allow network.loss (allowed: http.delay, http.abort, tcp.latency); '
      + 'tenant "shop" does not allow privileged faults (spec.network needs a privileged container); '
      + 'spec.http[0].delay.fixed 5s exceeds the tenant maximum of 2s');
    assert.equal(v.message, formatDenial('shop', v.violations));
  });

  it('allows a policy within the allowlist and reports its faults', () => {
    const v = admissionVerdict({ policy: policy({ http: [{ delay: { fixed: '1s' } }] }), namespace: ns, tenants: [shop], user: { username: 'jane' } });
    assert.deepEqual([v.allowed, v.message, v.tenant, v.faults], [true, '', 'shop', 'http.delay']);
  });

  it('denies invalid policies with their field errors', () => {
    const v = admissionVerdict({ policy: policy({ duration: '10', http: [{ delay: { fixed: '1s' } }] }), namespace: ns, tenants: [shop], user: undefined });
    assert.equal(v.message, 'ChaosPolicy is invalid: spec.duration: Invalid value: "10": missing unit in duration "10" (use ns, us, ms, s, m or h)');
  });

  it('denies namespaces that did not opt in, or that no tenant owns', () => {
    const p = policy({ http: [{ delay: { fixed: '1s' } }] });
    assert.match(admissionVerdict({ policy: p, namespace: { name: 'shop' }, tenants: [shop], user: undefined }).message, /not opted in to chaos \(label it faultline.dev\/chaos=enabled\)/);
    assert.match(admissionVerdict({ policy: p, namespace: { ...ns, name: 'web' }, tenants: [shop], user: undefined }).message, /namespace "web" belongs to no ChaosTenant/);
    const twin = tenant({ kinds: [] }, {}, 'twin');
    assert.match(admissionVerdict({ policy: p, namespace: ns, tenants: [shop, twin], user: undefined }).message, /claimed by several ChaosTenants \("shop", "twin"\)/);
  });

  it('ignores an invalid tenant, so its namespaces fail closed', () => {
    const broken = tenant({ kinds: ['http.delay'], limits: { maxDelay: 'forever' } });
    const v = admissionVerdict({ policy: policy({ http: [{ delay: { fixed: '1s' } }] }), namespace: ns, tenants: [broken], user: undefined });
    assert.match(v.message, /belongs to no ChaosTenant/);
  });

  it('warns about unknown fields and faults fixed at pod start', () => {
    const p = policy({ time: { offset: '1h' } }) as unknown as { spec: Record<string, unknown> };
    p.spec.durration = '1m';
    const v = admissionVerdict({ policy: p, namespace: ns, tenants: [tenant({ kinds: ['time.offset'], privileged: true })], user: undefined });
    assert.equal(v.allowed, true);
    assert.deepEqual(v.warnings, ['unknown field "spec.durration"', 'network, io and time faults are fixed at pod start: running pods get them only when restarted']);
  });
});

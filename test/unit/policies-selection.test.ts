import assert from 'node:assert/strict';
import { matchesSelector, pickTargets, targetCount } from '../../policies/selection.ts';
import { formatTenantConflicts, tenantConflicts, tenantForNamespace } from '../../policies/tenancy.ts';
import type { LabelSelector } from '../../policies/types.ts';
import { tenant } from '../support/policies-fixtures.ts';

describe('policies: label selectors (Kubernetes semantics)', () => {
  const labels = { app: 'web', tier: 'front' };
  const table: Array<[string, LabelSelector, Record<string, string>, boolean]> = [
    ['empty selector matches everything', {}, labels, true],
    ['empty selector matches unlabelled', {}, {}, true],
    ['matchLabels equal', { matchLabels: { app: 'web' } }, labels, true],
    ['matchLabels different value', { matchLabels: { app: 'db' } }, labels, false],
    ['matchLabels missing key', { matchLabels: { env: 'prod' } }, labels, false],
    ['matchLabels empty value vs absent key', { matchLabels: { env: '' } }, labels, false],
    ['In', { matchExpressions: [{ key: 'app', operator: 'In', values: ['web', 'api'] }] }, labels, true],
    ['In, absent key', { matchExpressions: [{ key: 'env', operator: 'In', values: ['x'] }] }, labels, false],
    ['NotIn', { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['web'] }] }, labels, false],
    ['NotIn, absent key matches', { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] }, labels, true],
    ['Exists', { matchExpressions: [{ key: 'tier', operator: 'Exists' }] }, labels, true],
    ['Exists, absent', { matchExpressions: [{ key: 'env', operator: 'Exists' }] }, labels, false],
    ['DoesNotExist, absent key matches', { matchExpressions: [{ key: 'env', operator: 'DoesNotExist' }] }, labels, true],
    ['DoesNotExist, present', { matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] }, labels, false],
    ['matchLabels AND matchExpressions', { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['back'] }] }, labels, false],
    ['inherited keys are not labels', { matchExpressions: [{ key: 'toString', operator: 'Exists' }] }, {}, false],
  ];
  for (const [what, selector, l, expected] of table) it(what, () => assert.equal(matchesSelector(selector, l), expected));
});

describe('policies: blast radius', () => {
  it('counts per mode; fixed-percent is floor(n·p/100), at least 1; maxPodPercent caps with no minimum', () => {
    assert.deepEqual([0, 1, 3, 10].map((n) => targetCount({ type: 'fixed-percent', value: 10 }, n)), [0, 1, 1, 1]);
    assert.deepEqual([0, 1, 3, 10].map((n) => targetCount({ type: 'fixed-percent', value: 50 }, n)), [0, 1, 1, 5]);
    assert.deepEqual([0, 5].map((n) => targetCount({ type: 'one' }, n)), [0, 1]);
    assert.deepEqual([2, 5].map((n) => targetCount({ type: 'fixed', value: 3 }, n)), [2, 3]);
    assert.deepEqual([0, 7].map((n) => targetCount({ type: 'all' }, n)), [0, 7]);
    assert.equal(targetCount({ type: 'all' }, 10, 30), 3);
    assert.equal(targetCount({ type: 'one' }, 3, 10), 0);
  });

  const pods = (n: number, labels = { app: 'web' }) => Array.from({ length: n }, (_, i) => ({ name: `web-${i}`, labels }));

  it('only picks pods the selector matches', () => {
    const picked = pickTargets({ uid: 'u', selector: { matchLabels: { app: 'web' } }, mode: { type: 'all' } }, [...pods(3), { name: 'db-0', labels: { app: 'db' } }]);
    assert.deepEqual(picked, ['web-0', 'web-1', 'web-2']);
  });

  it('is deterministic, and differs between policies', () => {
    const a = pickTargets({ uid: 'a', selector: {}, mode: { type: 'fixed', value: 5 } }, pods(20));
    assert.deepEqual(pickTargets({ uid: 'a', selector: {}, mode: { type: 'fixed', value: 5 } }, [...pods(20)].reverse()), a);
    assert.equal(a.length, 5);
    assert.notDeepEqual(pickTargets({ uid: 'b', selector: {}, mode: { type: 'fixed', value: 5 } }, pods(20)), a);
  });

  it('keeps previous targets that still match, and refills only what left', () => {
    const all = pods(20);
    const policy = { uid: 'u', selector: { matchLabels: { app: 'web' } }, mode: { type: 'fixed' as const, value: 5 } };
    const first = pickTargets(policy, all);
    assert.equal(first.length, 5);
    // A pod outside the set arrives: nothing changes.
    assert.deepEqual(pickTargets({ ...policy, previousTargets: first }, [...all, { name: 'web-99', labels: { app: 'web' } }]), first);
    // A target goes away: the other four stay, one replacement is added.
    const gone = first[0]!;
    const next = pickTargets({ ...policy, previousTargets: first }, all.filter((p) => p.name !== gone));
    assert.equal(next.length, 5);
    assert.deepEqual(first.filter((n) => n !== gone).filter((n) => next.includes(n)).length, 4);
    // A target stops matching the selector: it is dropped.
    const relabelled = all.map((p) => (p.name === first[1] ? { ...p, labels: { app: 'other' } } : p));
    assert.ok(!pickTargets({ ...policy, previousTargets: first }, relabelled).includes(first[1]!));
    // Previous targets are preferred even when the hash order would choose others.
    const chosenByHand = ['web-10', 'web-11', 'web-12', 'web-13', 'web-14'];
    assert.deepEqual(pickTargets({ ...policy, previousTargets: chosenByHand }, all), chosenByHand);
  });
});

describe('policies: tenancy', () => {
  const shop = tenant({}, { namespaces: ['shop'] }, 'shop');
  const teams = tenant({}, { namespaces: [], namespaceSelector: { matchLabels: { team: 'payments' } } }, 'payments');
  it('finds the owner by name or by selector (including kubernetes.io/metadata.name)', () => {
    assert.equal((tenantForNamespace({ name: 'shop' }, [shop, teams]) as { tenant: { metadata: { name: string } } }).tenant.metadata.name, 'shop');
    assert.equal((tenantForNamespace({ name: 'pay', labels: { team: 'payments' } }, [shop, teams]) as { tenant: { metadata: { name: string } } }).tenant.metadata.name, 'payments');
    const byName = tenant({}, { namespaces: [], namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'x' } } }, 'x');
    assert.ok('tenant' in tenantForNamespace({ name: 'x' }, [byName]));
    assert.deepEqual(tenantForNamespace({ name: 'web' }, [shop, teams]), { error: 'namespace "web" belongs to no ChaosTenant' });
  });
  it('detects namespaces two tenants would own', () => {
    const candidate = tenant({}, { namespaces: ['shop', 'new'], namespaceSelector: { matchLabels: { team: 'payments' } } }, 'greedy');
    const conflicts = tenantConflicts(candidate, [shop, teams, candidate], [{ name: 'pay', labels: { team: 'payments' } }, { name: 'other' }]);
    assert.deepEqual(conflicts, [{ namespace: 'pay', tenant: 'payments' }, { namespace: 'shop', tenant: 'shop' }]);
    assert.equal(formatTenantConflicts('greedy', conflicts), 'ChaosTenant "greedy" would share namespaces with other tenants: "pay" (tenant "payments"), "shop" (tenant "shop"); a namespace belongs to at most one tenant');
    assert.deepEqual(tenantConflicts(tenant({}, { namespaces: ['solo'] }, 'solo'), [shop, teams], [{ name: 'pay', labels: { team: 'payments' } }]), []);
  });
});

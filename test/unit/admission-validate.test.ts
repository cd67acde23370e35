// The validating handlers: AdmissionRequest in, verdict out (and its wire
// form), over an in-memory cluster view.
import assert from 'node:assert/strict';
import { createLogger } from '../../common/log.ts';
import { reviewResponse } from '../../webhook/admission.ts';
import { createPolicyValidator, NO_CLUSTER_VIEW } from '../../webhook/validate-policies.ts';
import { createTenantValidator } from '../../webhook/validate-tenants.ts';
import { FakeCluster, policyRequest, tenantRequest } from '../support/admission-cluster.ts';
import { policy, tenant } from '../support/policies-fixtures.ts';

const log = createLogger('test', 'silent');
const web = { matchLabels: { app: 'web' } };
const delay = (fixed: string) => ({ selector: web, http: [{ delay: { fixed } }] });
const shop = () => tenant({ kinds: ['http.delay', 'http.abort'], limits: { maxDelay: '2s' } }, { subjects: [{ kind: 'Group', name: 'tenant-shop' }] });

function cluster(): FakeCluster {
  return new FakeCluster().withNamespace('shop').withNamespace('plain', false).withNamespace('orphan').withTenant(shop()).withPod('web-1', { app: 'web' });
}

describe('admission: /validate/chaospolicies', () => {
  it('admits a policy within the allowlist, by a tenant subject, with no warning', async () => {
    const verdict = await createPolicyValidator({ cluster: cluster(), log })(policyRequest(policy(delay('200ms'))));
    assert.equal(verdict.allowed, true);
    assert.deepEqual(verdict.warnings, []);
  });

  it('counts a paused denial against the owning tenant, as the verdict resolves it among the valid tenants', async () => {
    const paused = { ...shop(), spec: { ...shop().spec, paused: true } };
    const broken = tenant({ kinds: ['no.such-kind' as never] }, {}, 'broken');
    const c = new FakeCluster().withNamespace('shop').withTenant(paused).withTenant(broken);
    const denials: Array<[string, string]> = [];
    const verdict = await createPolicyValidator({ cluster: c, log, denied: (t, why) => denials.push([t, why]) })(policyRequest(policy(delay('200ms'))));
    assert.equal(verdict.allowed, false);
    assert.deepEqual(denials, [['shop', 'paused']], 'the invalid tenant claiming the namespace too does not blank the label');
  });

  it('denies over a limit with 403 Forbidden naming the field path and the limit', async () => {
    const req = policyRequest(policy(delay('5s')));
    const verdict = await createPolicyValidator({ cluster: cluster(), log })(req);
    const { response } = reviewResponse(req.uid, verdict);
    assert.equal(response.allowed, false);
    assert.equal(response.uid, req.uid);
    assert.equal(response.status?.code, 403);
    assert.equal(response.status?.reason, 'Forbidden');
    assert.equal(response.status?.message, 'tenant "shop": spec.http[0].delay.fixed 5s exceeds the tenant maximum of 2s');
  });

  it('denies a kind the tenant does not allow, listing what it does', async () => {
    const verdict = await createPolicyValidator({ cluster: cluster(), log })(
      policyRequest(policy({ selector: web, tcp: [{ port: 6379, toxics: [{ type: 'latency', latency: 100 }] }] })),
    );
    assert.match(verdict.status!.message, /^tenant "shop" does not allow tcp\.latency \(allowed: http\.delay, http\.abort\)/);
  });

  it('denies in a namespace without the chaos label, and in one no tenant owns', async () => {
    const validate = createPolicyValidator({ cluster: cluster(), log });
    const plain = await validate(policyRequest(policy(delay('1s'), { namespace: 'plain' })));
    assert.match(plain.status!.message, /namespace "plain" is not opted in to chaos \(label it faultline\.dev\/chaos=enabled\)/);
    const orphan = await validate(policyRequest(policy(delay('1s'), { namespace: 'orphan' })));
    assert.match(orphan.status!.message, /namespace "orphan" belongs to no ChaosTenant/);
  });

  it('denies in a namespace enforcing Pod Security baseline or restricted, saying why and what to change (issue 13 L3)', async () => {
    for (const level of ['baseline', 'restricted']) {
      const c = cluster();
      c.namespaceList = c.namespaceList.map((n) => (n.name === 'shop' ? { ...n, labels: { ...n.labels, 'pod-security.kubernetes.io/enforce': level } } : n));
      const verdict = await createPolicyValidator({ cluster: c, log })(policyRequest(policy(delay('1s'))));
      assert.equal(verdict.allowed, false);
      assert.match(verdict.status!.message, new RegExp(`namespace "shop" enforces Pod Security "${level}" \\(label pod-security\\.kubernetes\\.io/enforce\\)`));
      assert.match(verdict.status!.message, /set pod-security\.kubernetes\.io\/enforce=privileged \(Faultline's ValidatingAdmissionPolicy "faultline-pod-security"/);
    }
  });

  it('denies an author outside the tenant subjects', async () => {
    const verdict = await createPolicyValidator({ cluster: cluster(), log })(
      policyRequest(policy(delay('1s')), { user: { username: 'bob', groups: ['tenant-pay'] } }),
    );
    assert.equal(verdict.allowed, false);
    assert.match(verdict.status!.message, /tenant "shop" does not let user "bob" \(groups: tenant-pay\) author policies \(subjects: Group tenant-shop\)/);
  });

  it('fails closed without a cluster view', async () => {
    const verdict = await createPolicyValidator({ cluster: undefined, log })(policyRequest(policy(delay('1s'))));
    assert.equal(verdict.allowed, false);
    assert.equal(verdict.status!.message, NO_CLUSTER_VIEW);
    const tenantVerdict = await createTenantValidator({ cluster: undefined, log })(tenantRequest(shop()));
    assert.equal(tenantVerdict.allowed, false);
  });

  it('warns when the selector matches no pod yet, or only pods without the proxy', async () => {
    const c = cluster().withPod('api-1', { app: 'api' }, { injected: false });
    const validate = createPolicyValidator({ cluster: c, log });
    const none = await validate(policyRequest(policy({ ...delay('1s'), selector: { matchLabels: { app: 'nothing' } } })));
    assert.equal(none.allowed, true);
    assert.match(none.warnings!.join('\n'), /spec\.selector matches no pod in namespace "shop" yet/);
    const uninjected = await validate(policyRequest(policy({ ...delay('1s'), selector: { matchLabels: { app: 'api' } } })));
    assert.match(uninjected.warnings!.join('\n'), /none of the 1 pod\(s\).*has the faultline proxy/);
  });

  it('lets status updates and deletes through unjudged', async () => {
    const validate = createPolicyValidator({ cluster: undefined, log });
    assert.equal((await validate(policyRequest(policy(delay('9s')), { operation: 'UPDATE', subResource: 'status' }))).allowed, true);
    assert.equal((await validate(policyRequest(policy(delay('9s')), { operation: 'DELETE' }))).allowed, true);
  });

  it('on UPDATE re-judges a changed spec, but always lets metadata edits and pausing through', async () => {
    const validate = createPolicyValidator({ cluster: cluster(), log });
    // Admitted once under looser limits; the tenant has since tightened to 2s.
    const old = policy(delay('5s'));
    const relabelled = policy(delay('5s'), { labels: { team: 'x' } });
    assert.equal((await validate(policyRequest(relabelled, { operation: 'UPDATE', oldObject: old }))).allowed, true);
    const paused = policy({ ...delay('5s'), paused: true });
    assert.equal((await validate(policyRequest(paused, { operation: 'UPDATE', oldObject: old }))).allowed, true);
    const resumed = policy(delay('5s'));
    assert.equal((await validate(policyRequest(resumed, { operation: 'UPDATE', oldObject: paused }))).allowed, false);
    const longer = policy(delay('6s'));
    assert.equal((await validate(policyRequest(longer, { operation: 'UPDATE', oldObject: old }))).allowed, false);
  });
});

describe('admission: /validate/chaostenants', () => {
  it('admits a tenant that owns free namespaces', async () => {
    const verdict = await createTenantValidator({ cluster: cluster(), log })(tenantRequest(tenant({ kinds: ['http.delay'] }, { namespaces: ['pay'] }, 'pay')));
    assert.equal(verdict.allowed, true);
  });

  it('denies a second tenant claiming a namespace, by name or by selector', async () => {
    const validate = createTenantValidator({ cluster: cluster(), log });
    const byName = await validate(tenantRequest(tenant({ kinds: ['http.delay'] }, { namespaces: ['pay', 'shop'] }, 'web')));
    assert.equal(byName.status?.code, 403);
    assert.equal(
      byName.status?.message,
      'ChaosTenant "web" would share namespaces with other tenants: "shop" (tenant "shop"); a namespace belongs to at most one tenant',
    );
    const bySelector = await validate(
      tenantRequest(tenant({ kinds: ['http.delay'] }, { namespaces: [], namespaceSelector: { matchLabels: { 'faultline.dev/chaos': 'enabled' } } }, 'web')),
    );
    assert.match(bySelector.status!.message, /"shop" \(tenant "shop"\)/);
  });

  it('lets a tenant be updated in place (it does not conflict with itself)', async () => {
    const verdict = await createTenantValidator({ cluster: cluster(), log })(tenantRequest(shop(), { operation: 'UPDATE', oldObject: shop() }));
    assert.equal(verdict.allowed, true);
  });

  it('denies an invalid tenant with its field errors', async () => {
    const bad = tenant({ kinds: ['http.teleport'] });
    const verdict = await createTenantValidator({ cluster: cluster(), log })(tenantRequest(bad));
    assert.equal(verdict.allowed, false);
    assert.match(verdict.status!.message, /^ChaosTenant is invalid: .*spec\.allow\.kinds/);
  });
});

import assert from 'node:assert/strict';
import { switchWrite } from '../../cli/commands/pause.ts';
import { UsageError } from '../../cli/command.ts';
import { stoppedPolicies } from '../../pod-setup/kernel-brake.ts';
import { CLUSTER_SWITCH, clusterPaused, namespacePausedBy, NO_SWITCHES, PAUSE_ANNOTATION, policyPausedBy, switchesFrom } from '../../policies/switches.ts';
import type { ChaosPolicy, ChaosTenant } from '../../policies/types.ts';

function tenant(name: string, spec: Partial<ChaosTenant['spec']>): ChaosTenant {
  return { apiVersion: 'chaos.faultline.dev/v1alpha1', kind: 'ChaosTenant', metadata: { name }, spec: { allow: { kinds: [] }, ...spec } };
}
function policy(namespace: string, name: string, extra: { tenant?: string; paused?: boolean } = {}): ChaosPolicy {
  return {
    apiVersion: 'chaos.faultline.dev/v1alpha1',
    kind: 'ChaosPolicy',
    metadata: { namespace, name },
    spec: { duration: '1m', ...(extra.paused !== undefined ? { paused: extra.paused } : {}) },
    ...(extra.tenant ? { status: { tenant: extra.tenant } } : {}),
  };
}

describe('pause switches', () => {
  it('reads the cluster switch fail-safe: any value but "false" pauses', () => {
    assert.equal(clusterPaused(undefined), false);
    assert.equal(clusterPaused({}), false);
    assert.equal(clusterPaused({ [PAUSE_ANNOTATION]: 'false' }), false);
    assert.equal(clusterPaused({ [PAUSE_ANNOTATION]: ' False ' }), false);
    for (const v of ['true', 'yes', '', 'ture']) assert.equal(clusterPaused({ [PAUSE_ANNOTATION]: v }), true, JSON.stringify(v));
  });

  it('holds a policy by the cluster switch first, then its tenant (status.tenant or a listed namespace)', () => {
    const tenants = [tenant('shop', { namespaces: ['shop'], paused: true }), tenant('web', { namespaces: ['web'] })];
    const on = switchesFrom({ [PAUSE_ANNOTATION]: 'true' }, tenants);
    assert.equal(policyPausedBy(policy('web', 'p'), on), CLUSTER_SWITCH);
    const off = switchesFrom(undefined, tenants);
    assert.equal(policyPausedBy(policy('web', 'p', { tenant: 'web' }), off), undefined);
    assert.equal(policyPausedBy(policy('shop', 'p'), off), 'ChaosTenant "shop" spec.paused', 'by namespace listing');
    assert.equal(policyPausedBy(policy('selected-ns', 'p', { tenant: 'shop' }), off), 'ChaosTenant "shop" spec.paused', 'by status.tenant (selector-owned namespace)');
    assert.equal(policyPausedBy(policy('shop', 'p'), NO_SWITCHES), undefined);
  });

  it('judges a namespace as the webhook does, label selectors included', () => {
    const tenants = [tenant('sel', { namespaceSelector: { matchLabels: { team: 'a' } }, paused: true })];
    assert.equal(namespacePausedBy(false, tenants, { name: 'x', labels: { team: 'a' } }), 'ChaosTenant "sel" spec.paused');
    assert.equal(namespacePausedBy(false, tenants, { name: 'y', labels: { team: 'b' } }), undefined);
    assert.equal(namespacePausedBy(true, [], { name: 'y' }), CLUSTER_SWITCH);
  });

  it('faultline pause/resume: one merge patch per switch, with its kubectl form; bad flags are usage errors', () => {
    const all = switchWrite({ all: true }, true);
    assert.equal(all.path, '/api/v1/namespaces/faultline-system');
    assert.deepEqual(all.patch, { metadata: { annotations: { [PAUSE_ANNOTATION]: 'true' } } });
    assert.match(all.kubectl, /^kubectl annotate namespace faultline-system faultline\.dev\/paused=true --overwrite$/);
    assert.deepEqual(switchWrite({ all: true }, false).patch, { metadata: { annotations: { [PAUSE_ANNOTATION]: null } } }, 'resume removes the annotation');
    const t = switchWrite({ tenant: 'shop' }, false);
    assert.equal(t.path, '/apis/chaos.faultline.dev/v1alpha1/chaostenants/shop');
    assert.deepEqual(t.patch, { spec: { paused: false } });
    assert.throws(() => switchWrite({}, true), UsageError);
    assert.throws(() => switchWrite({ all: true, tenant: 'x' }, true), UsageError);
    assert.throws(() => switchWrite({ tenant: '../x' }, true), /not a valid ChaosTenant name/);
  });

  it('faultline-kernel lifts the faults of policies deleted, paused or held by a switch, once each', () => {
    const planned = new Set(['ns/a', 'ns/b', 'ns/c', 'ns/d']);
    const a = policy('ns', 'a');
    const b = policy('ns', 'b', { paused: true });
    const c = policy('ns', 'c');
    const stopped = stoppedPolicies(planned, [a, b], [a, b, c]);
    assert.deepEqual([...stopped], [['ns/b', 'policy spec.paused'], ['ns/c', 'pause switch or steady-state abort'], ['ns/d', 'policy deleted']]);
  });
});

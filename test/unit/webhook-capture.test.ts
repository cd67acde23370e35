// The webhook's side of transparent capture, through the real HTTPS webhook:
// malformed exclusion annotations deny the pod with the reason, a mesh
// sidecar added by a later injector reaches the plan on reinvocation, and
// what cannot be captured safely is skipped with a warning.
import assert from 'node:assert/strict';
import fjp from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import type { InitPlan } from '../../contract/plans.ts';
import { INIT_CONTAINER_NAME, PLAN_ENV, PROXY_CONTAINER_NAME } from '../../contract/pod-layout.ts';
import { decodePatch, podReview, startTestWebhook, type TestWebhook } from '../support/webhook-server.ts';

const { applyPatch, deepClone } = fjp;

const pod = (annotations: Record<string, string> = {}, containers: V1Container[] = [{ name: 'app', image: 'app', ports: [{ containerPort: 8080 }] }]): V1Pod => ({
  metadata: { name: 'web', annotations },
  spec: { containers },
});

const planOf = (p: V1Pod, name: string): InitPlan =>
  JSON.parse(p.spec!.initContainers!.find((c) => c.name === name)!.env!.find((e) => e.name === PLAN_ENV)!.value!) as InitPlan;

const istioProxy: V1Container = { name: 'istio-proxy', image: 'docker.io/istio/proxyv2:1.24.0', securityContext: { runAsUser: 1337 } };

describe('webhook: capture wiring at admission', function () {
  let hook: TestWebhook;
  before(async () => {
    hook = await startTestWebhook();
  });
  after(async () => {
    await hook?.close();
  });

  const malformed: Array<[string, string, RegExp]> = [
    ['faultline.dev/exclude-inbound-ports', '8080,http', /exclude-inbound-ports: 'http' is not a port number/],
    ['faultline.dev/exclude-outbound-ports', '70000', /exclude-outbound-ports: '70000' is not a port number/],
    ['faultline.dev/exclude-outbound-cidrs', '10.0.0.0/33', /exclude-outbound-cidrs: '10.0.0.0\/33' is not an IP address or CIDR/],
    ['faultline.dev/exclude-inbound-cidrs', '10.0.0.0/8 ; drop', /exclude-inbound-cidrs: '10.0.0.0\/8 ; drop' is not an IP address or CIDR/],
  ];
  for (const [annotation, value, message] of malformed) {
    it(`denies a pod whose ${annotation} is malformed, naming the entry`, async () => {
      const before = await hook.metric('faultline_injection_skips_total', { reason: 'invalid-annotation', dry_run: 'false' });
      const answer = await hook.review(podReview(pod({ [annotation]: value })));
      assert.equal(await hook.metric('faultline_injection_skips_total', { reason: 'invalid-annotation', dry_run: 'false' }), before + 1);
      assert.equal(answer.response.allowed, false);
      assert.equal(answer.response.patch, undefined);
      assert.equal(answer.response.status?.code, 400);
      assert.match(answer.response.status!.message, message);
      assert.match(answer.response.status!.message, /^faultline: /);
    });
  }

  it('tells the plan of a mesh sidecar another injector added after us (reinvocation), once', async () => {
    const first = await hook.review(podReview(pod()));
    const injected = applyPatch(deepClone(pod()), decodePatch(first) as Operation[], true).newDocument as V1Pod;
    assert.equal(planOf(injected, INIT_CONTAINER_NAME).wiring.capture!.mesh, undefined);

    // Istio's injector runs after ours ("faultline" sorts first) and adds its proxy.
    injected.spec!.containers.push(istioProxy);
    injected.spec!.initContainers!.push({ name: 'istio-init', image: 'docker.io/istio/proxyv2:1.24.0' });
    const again = await hook.review(podReview(injected));
    assert.equal(again.response.allowed, true);
    const patch = decodePatch(again) as Operation[];
    assert.deepEqual(patch.map((op) => op.op), ['replace', 'replace']);
    const meshed = applyPatch(deepClone(injected), patch, true).newDocument as V1Pod;
    for (const name of [INIT_CONTAINER_NAME, PROXY_CONTAINER_NAME]) assert.deepEqual(planOf(meshed, name).wiring.capture!.mesh, { kind: 'istio', uid: 1337 });
    assert.equal(again.response.warnings, undefined);

    const third = await hook.review(podReview(meshed));
    assert.equal(third.response.patch, undefined);
  });

  it('skips, with a warning, a pod whose mesh proxy runs as the proxy UID or whose app takes a proxy port', async () => {
    const sameUid = await hook.review(podReview(pod({}, [{ name: 'app', image: 'app' }, { ...istioProxy, securityContext: { runAsUser: 16337 } }])));
    assert.equal(sameUid.response.allowed, true);
    assert.equal(sameUid.response.patch, undefined);
    assert.match(sameUid.response.warnings![0]!, /port-conflict.*istio proxy runs as UID 16337/);

    const clash = await hook.review(podReview(pod({}, [{ name: 'app', image: 'app', ports: [{ containerPort: 16006 }] }])));
    assert.equal(clash.response.patch, undefined);
    assert.match(clash.response.warnings![0]!, /port-conflict.*container app port 16006 collides/);
  });
});

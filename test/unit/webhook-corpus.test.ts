// Every pod shape in test/fixtures/pods goes through the real HTTPS webhook; the
// patch must apply cleanly, add exactly our parts, leave every byte of the
// user's spec alone, and a second review of the result must add nothing.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { parse } from 'yaml';
import fjp from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import type { CaptureWiring, InitPlan } from '../../contract/plans.ts';
import { VERSION } from '../../common/version.ts';
import { INJECTED_ANNOTATION, PLAN_ANNOTATION } from '../../policies/wellknown.ts';
import { FAIL_OPEN_CONTAINER_NAME, INIT_CONTAINER_NAME, PLAN_ENV, PROXY_CONTAINER_NAME, RUN_VOLUME_NAME, TOKEN_VOLUME_NAME } from '../../contract/pod-layout.ts';
import { admittedByServiceAccountPlugin } from '../support/service-account-plugin.ts';
import { decodePatch, podReview, startTestWebhook, type TestWebhook } from '../support/webhook-server.ts';

const { applyPatch, deepClone } = fjp;
const FIXTURES = new URL('../fixtures/pods/', import.meta.url);

/**
 * What each fixture's capture must differ in from the default (every port
 * captured, no exclusions, no mesh): exclusions from its annotations, the mesh
 * sidecar it carries, the warning a retired annotation earns.
 */
const EXPECTED: Record<string, { capture?: Partial<CaptureWiring>; warning?: RegExp }> = {
  '01-bare': {},
  '02-deployment-two-containers': {},
  '03-existing-init-containers': {},
  '04-existing-native-sidecar': {},
  '05-named-probe-ports': {},
  '06-exec-probes-udp': {},
  '07-restricted-security': {},
  '08-statefulset': {},
  '09-job': {},
  '10-cronjob-onfailure': { warning: /faultline\.dev\/outbound is no longer needed/ },
  '11-annotation-escaping': { capture: { excludeInboundPorts: [9090] } },
  '12-projected-volumes': {},
  '13-hostport': {},
  '14-ephemeral-containers-field': {},
  '15-image-pull-secrets': {},
  '16-no-automount': {},
  '17-windows-nodeselector': {},
  '18-many-ports-duplicates': {},
  '21-istio-sidecar': { capture: { mesh: { kind: 'istio', uid: 1337 } } },
  '22-istio-native-sidecar': { capture: { mesh: { kind: 'istio', uid: 1337 } } },
  '23-linkerd-sidecar': { capture: { mesh: { kind: 'linkerd', uid: 2102 } } },
  '24-linkerd-native-sidecar': { capture: { mesh: { kind: 'linkerd', uid: 2102 } } },
  '25-capture-exclusions': {
    capture: { excludeInboundPorts: [8081, 9090], excludeOutboundPorts: [5432], excludeOutboundCidrs: ['10.96.0.0/12', 'fd00:10:96::/112'], excludeInboundCidrs: ['192.168.7.0/24'] },
  },
};

/** The capture every injected pod gets unless its fixture says otherwise (the default proxy ports). */
const DEFAULT_CAPTURE: CaptureWiring = {
  inboundPort: 16006,
  outboundPort: 16001,
  proxyPorts: [16000, 16020, 16021, 16474],
  excludeInboundPorts: [],
  excludeInboundCidrs: [],
  excludeOutboundPorts: [],
  excludeOutboundCidrs: [],
};

/** Fixtures the webhook must leave alone, with the skip reason its warning names. */
const SKIPPED: Record<string, string> = {
  '19-windows-os': 'windows-pod',
  '20-windows-nodeselector-only': 'windows-pod',
};

const fixtures = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.yaml'))
  .sort()
  .map((file) => ({ name: file.replace(/\.yaml$/, ''), pod: parse(readFileSync(new URL(file, FIXTURES), 'utf8')) as V1Pod }));

/** The patched pod with everything Faultline adds taken out again. */
function withoutInjection(patched: V1Pod, original: V1Pod): V1Pod {
  const pod = deepClone(patched) as V1Pod;
  const spec = pod.spec!;
  spec.initContainers = spec.initContainers!.filter((c) => ![INIT_CONTAINER_NAME, FAIL_OPEN_CONTAINER_NAME, PROXY_CONTAINER_NAME].includes(c.name));
  if (original.spec?.initContainers === undefined && spec.initContainers.length === 0) delete spec.initContainers;
  spec.volumes = spec.volumes!.filter((v) => v.name !== RUN_VOLUME_NAME && v.name !== TOKEN_VOLUME_NAME);
  if (original.spec?.volumes === undefined && spec.volumes.length === 0) delete spec.volumes;
  const annotations = pod.metadata!.annotations!;
  delete annotations[INJECTED_ANNOTATION];
  delete annotations[PLAN_ANNOTATION];
  if (original.metadata?.annotations === undefined && Object.keys(annotations).length === 0) delete pod.metadata!.annotations;
  return pod;
}

function planOf(c: V1Container): InitPlan {
  const value = c.env?.find((e) => e.name === PLAN_ENV)?.value;
  assert.ok(value, `${c.name} has no ${PLAN_ENV}`);
  return JSON.parse(value) as InitPlan;
}

describe('webhook: injection corpus over HTTPS', function () {
  let hook: TestWebhook;
  before(async () => {
    hook = await startTestWebhook();
  });
  after(async () => {
    await hook?.close();
  });

  it('covers every fixture with an expectation (and at least 15 shapes)', () => {
    assert.ok(fixtures.length >= 15);
    assert.deepEqual(fixtures.map((f) => f.name), [...Object.keys(EXPECTED), ...Object.keys(SKIPPED)].sort());
  });

  for (const { name, pod } of fixtures.filter((f) => SKIPPED[f.name] !== undefined)) {
    it(`leaves ${name} alone, saying why in a warning`, async () => {
      const answer = await hook.review(podReview(pod, { uid: `uid-${name}` }));
      assert.equal(answer.response.allowed, true);
      assert.equal(answer.response.patch, undefined);
      assert.equal(answer.response.warnings?.length, 1);
      assert.match(answer.response.warnings![0]!, new RegExp(`^faultline: proxy not injected \\(${SKIPPED[name]}\\): .*Linux-only`));
    });
  }

  for (const { name, pod } of fixtures.filter((f) => SKIPPED[f.name] === undefined)) {
    it(`injects ${name} exactly once and leaves the user's spec untouched`, async () => {
      // As the webhook sees it: after the apiserver's ServiceAccount plugin.
      const admitted = admittedByServiceAccountPlugin(pod as V1Pod);
      const original = deepClone(admitted) as V1Pod;
      const review = podReview(admitted, { uid: `uid-${name}` });
      const answer = await hook.review(review);
      assert.equal(answer.response.uid, `uid-${name}`);
      assert.equal(answer.response.allowed, true);
      assert.equal(answer.response.patchType, 'JSONPatch');
      const patch = decodePatch(answer) as Operation[];
      assert.ok(patch.every((op) => op.op === 'add'), 'only add operations');

      // validateOperation=true: fast-json-patch rejects any op that does not fit the document.
      const patched = applyPatch(deepClone(admitted), patch, true).newDocument as V1Pod;
      const inits = patched.spec!.initContainers!;
      assert.equal(inits[0]!.name, INIT_CONTAINER_NAME);
      assert.equal(inits[1]!.name, FAIL_OPEN_CONTAINER_NAME);
      assert.equal(inits[2]!.name, PROXY_CONTAINER_NAME);
      assert.equal(inits[1]!.restartPolicy, 'Always');
      assert.equal(inits[2]!.restartPolicy, 'Always');
      assert.equal(inits.filter((c) => c.name === INIT_CONTAINER_NAME).length, 1);
      assert.equal(inits.filter((c) => c.name === PROXY_CONTAINER_NAME).length, 1);
      assert.deepEqual(inits.slice(3), original.spec!.initContainers ?? []);
      assert.deepEqual(patched.spec!.containers, original.spec!.containers);
      assert.deepEqual(patched.spec!.volumes!.slice(0, original.spec!.volumes?.length ?? 0), original.spec!.volumes ?? []);
      // A pod the ServiceAccount plugin gave no API token gives none to the proxy either (issue 13 M6).
      const token = original.spec!.automountServiceAccountToken === false ? [] : [TOKEN_VOLUME_NAME];
      assert.deepEqual(patched.spec!.volumes!.slice(original.spec!.volumes?.length ?? 0).map((v) => v.name), [RUN_VOLUME_NAME, ...token]);
      assert.equal(patched.metadata!.annotations![INJECTED_ANNOTATION], VERSION);
      assert.deepEqual(withoutInjection(patched, original), original);

      const plan = planOf(inits[0]!);
      assert.deepEqual(planOf(inits[2]!), plan);
      const want = EXPECTED[name]!;
      // Capture, whatever ports the pod declares or probes: nothing is derived from them any more.
      assert.deepEqual(plan.wiring.capture, { ...DEFAULT_CAPTURE, ...want.capture });
      assert.deepEqual(Object.keys(plan.wiring).sort(), ['capture', 'proxyUid', 'toxiproxyPort']);
      assert.deepEqual(plan.kernel, { io: [] });
      assert.equal(plan.wiring.proxyUid, 16337);
      if (want.warning) assert.match(answer.response.warnings?.join('\n') ?? '', want.warning);
      else assert.equal(answer.response.warnings, undefined);

      // Second pass (reinvocation, or a retried create): nothing to add.
      const again = await hook.review(podReview(patched, { uid: `uid-${name}-2` }));
      assert.equal(again.response.allowed, true);
      assert.equal(again.response.patch, undefined);
      assert.equal(again.response.patchType, undefined);
      // The pod is injected, so its author must not be warned that it is not.
      assert.equal(again.response.warnings, undefined);
    });
  }
});

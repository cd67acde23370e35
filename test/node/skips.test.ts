// Pods Faultline must leave alone in a chaos namespace are created as the
// user wrote them: Windows pods (the API server rejects the injected Linux
// securityContext fields for them), pods in a namespace enforcing the
// `restricted` Pod Security level (the privileged init would get the pod
// refused), and hostNetwork pods (their netns is the node's; refused by
// faultline-pod-security unless an admin exempts the chaos namespace).
import assert from 'node:assert/strict';
import { DEMO_IMAGE } from '../../common/images.ts';
import type { ControlPlane } from '../../controlplane/index.ts';
import { INJECTED_ANNOTATION } from '../../policies/wellknown.ts';
import { freshNamespace, kubectlOk, nodeCluster } from '../support/node-cluster.ts';

interface StoredPod {
  metadata: { annotations?: Record<string, string> };
  spec: { initContainers?: Array<{ name: string }>; containers: Array<{ name: string }> };
}

/** Creates `pod` in `ns` as admin; returns the stored pod and kubectl's stderr (admission warnings). */
async function create(cp: ControlPlane, ns: string, pod: object): Promise<{ stored: StoredPod; warnings: string }> {
  const r = await cp.kubectl('admin', ['create', '-n', ns, '-o', 'json', '-f', '-'], { input: JSON.stringify(pod) });
  assert.equal(r.code, 0, `the pod was not created: ${r.stderr}`);
  return { stored: JSON.parse(r.stdout) as StoredPod, warnings: r.stderr };
}

function assertUninjected(p: StoredPod): void {
  assert.equal(p.metadata.annotations?.[INJECTED_ANNOTATION], undefined);
  const names = [...(p.spec.initContainers ?? []), ...p.spec.containers].map((c) => c.name);
  assert.ok(!names.some((n) => n.startsWith('faultline-')), names.join(', '));
}

describe('node: pods Faultline skips', function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  before(async () => {
    cp = await nodeCluster();
  });

  it('creates a Windows pod uninjected, with a warning', async () => {
    const ns = await freshNamespace(cp, { prefix: 'windows', chaos: true });
    const { stored, warnings } = await create(cp, ns, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'win' },
      spec: {
        os: { name: 'windows' },
        nodeSelector: { 'kubernetes.io/os': 'windows' },
        containers: [{ name: 'app', image: 'mcr.microsoft.com/windows/nanoserver:ltsc2022' }],
      },
    });
    assertUninjected(stored);
    assert.match(warnings, /windows/i);
  });

  it('creates a pod in a Pod-Security-restricted chaos namespace uninjected', async () => {
    const ns = await freshNamespace(cp, { prefix: 'restricted', chaos: true });
    await kubectlOk(cp, 'admin', ['label', 'namespace', ns, 'pod-security.kubernetes.io/enforce=restricted']);
    const { stored } = await create(cp, ns, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'strict' },
      spec: {
        securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [
          {
            name: 'app',
            image: DEMO_IMAGE,
            command: ['sleep', '600'],
            securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
          },
        ],
      },
    });
    assertUninjected(stored);
    await kubectlOk(cp, 'admin', ['wait', '--for=condition=Ready', 'pod/strict', '-n', ns, '--timeout=120s'], undefined, 130_000);
  });

  // hostNetwork pods: the injector skips them (their netns is the node's). A
  // chaos namespace holds pod authors to Pod Security baseline
  // (faultline-pod-security), which refuses them with a clear message; a chaos
  // namespace an admin exempted with faultline.dev/pod-security=privileged
  // creates and runs them, uninjected.
  it('runs a hostNetwork pod uninjected in an exempted chaos namespace, and refuses it with a clear message in one held to baseline', async () => {
    const spec = { hostNetwork: true, containers: [{ name: 'app', image: DEMO_IMAGE, command: ['sleep', '600'] }] };
    const held = await freshNamespace(cp, { prefix: 'hostnet', chaos: true });
    const denied = await cp.kubectl('admin', ['create', '-n', held, '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'hostnet' }, spec }) });
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /hostNetwork, hostPID and hostIPC are forbidden in chaos namespaces/);
    const exempt = await freshNamespace(cp, { prefix: 'hostnet-exempt', chaos: true, labels: { 'faultline.dev/pod-security': 'privileged' } });
    const { stored } = await create(cp, exempt, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'hostnet' }, spec });
    assertUninjected(stored);
    await kubectlOk(cp, 'admin', ['wait', '--for=condition=Ready', 'pod/hostnet', '-n', exempt, '--timeout=120s'], undefined, 130_000);
  });
});

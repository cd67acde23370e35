// Issue 13 H1: a chaos namespace must let Faultline's containers run with
// NET_ADMIN / privileged, and nobody else. The faultline-pod-security
// ValidatingAdmissionPolicy (manifests/base/pod-security.yaml) is evaluated
// by the real kube-apiserver here, against pods alice creates with her own
// credentials, and against pods the real webhook injected.
import assert from 'node:assert/strict';
import type { KubectlResult } from '../../controlplane/index.ts';
import { IMAGES } from '../../common/images.ts';
import { INJECTED_ANNOTATION, POD_SECURITY_POLICY_NAME } from '../../policies/wellknown.ts';
import { FAIL_OPEN_COMMAND, FAIL_OPEN_CONTAINER_NAME, KERNEL_CONTAINER_NAME, PROXY_CONTAINER_NAME } from '../../contract/pod-layout.ts';
import { freshNamespace, kubectlOk, pod, tenantNamespace, useControlPlane, type Pod } from '../support/e2e-cluster.ts';
import { createTenant } from '../support/e2e-sidecar-cluster.ts';

describe('e2e: privilege stays with Faultline’s own containers (faultline-pod-security)', function () {
  const cp = useControlPlane();
  let shop = '';
  let plain = '';

  before(async function () {
    this.timeout(60_000);
    plain = await freshNamespace(cp(), { editor: 'alice' });
    shop = await tenantNamespace(cp(), {
      kinds: ['network.loss', 'io.error', 'http.delay'],
      privileged: true,
      limits: { maxDuration: '1h' },
    });
  });

  const create = (ns: string, p: Pod, dryRun = true): Promise<KubectlResult> =>
    cp().kubectl('alice', ['create', ...(dryRun ? ['--dry-run=server'] : []), '-o', 'json', '-n', ns, '-f', '-'], { input: JSON.stringify(p) });

  function denied(res: KubectlResult, why: RegExp): void {
    assert.notEqual(res.code, 0, `expected a denial, got: ${res.stdout.slice(0, 300)}`);
    assert.match(res.stderr, new RegExp(`ValidatingAdmissionPolicy '${POD_SECURITY_POLICY_NAME}'`), res.stderr);
    assert.match(res.stderr, why, res.stderr);
  }

  const rootme = (extra: Partial<Pod['spec']>): Pod => pod('rootme', { spec: { ...extra } });

  it('denies alice a privileged, a hostPID and a hostPath pod in a chaos namespace', async () => {
    denied(await create(shop, rootme({ containers: [{ name: 'app', image: 'busybox', securityContext: { privileged: true } }] })), /privileged containers are forbidden/);
    denied(await create(shop, rootme({ hostPID: true })), /hostNetwork, hostPID and hostIPC are forbidden/);
    denied(
      await create(shop, rootme({ volumes: [{ name: 'root', hostPath: { path: '/' } }], containers: [{ name: 'app', image: 'busybox', volumeMounts: [{ name: 'root', mountPath: '/host' }] }] })),
      /hostPath volumes are forbidden/,
    );
    denied(await create(shop, rootme({ containers: [{ name: 'app', image: 'busybox', securityContext: { capabilities: { add: ['SYS_ADMIN'] } } }] })), /capabilities beyond the baseline set/);
  });

  it('denies a pod that brings its own "faultline-kernel" (run as it pleases, or with a hostPath)', async () => {
    const forged = (c: Record<string, unknown>, volumes: unknown[] = []): Pod =>
      pod('forged', {
        spec: {
          volumes,
          initContainers: [{ name: KERNEL_CONTAINER_NAME, image: IMAGES.init, args: ['kernel'], restartPolicy: 'Always', securityContext: { privileged: true, runAsUser: 0 }, ...c }],
        },
      });
    denied(await create(shop, forged({ image: 'busybox', command: ['sh', '-c', 'nsenter -t 1 -m sh'] })), /only the images the webhook injects|no command/);
    denied(await create(shop, forged({ lifecycle: { postStart: { exec: { command: ['sh'] } } } })), /no command, envFrom, lifecycle hooks/);
    denied(await create(shop, forged({ env: [{ name: 'LD_PRELOAD', value: '/tmp/evil.so' }] })), /its args and env names only/);
    // An emptyDir the app fills, mounted over the code the privileged container runs.
    denied(await create(shop, forged({ volumeMounts: [{ name: 'evil', mountPath: '/usr/local/bin' }] }, [{ name: 'evil', emptyDir: {} }])), /mount only the volumes the webhook injects/);
    denied(await create(shop, pod('named', { spec: { containers: [{ name: PROXY_CONTAINER_NAME, image: IMAGES.proxy }] } })), /reserved for the init containers/);
  });

  it('denies a forged "faultline-failopen" (the long-lived NET_ADMIN bash): another script, args, env or another volume', async () => {
    const netAdmin = { runAsUser: 0, runAsGroup: 0, runAsNonRoot: false, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { add: ['NET_ADMIN'], drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } };
    const forged = (c: Record<string, unknown>, volumes: unknown[] = []): Pod =>
      pod('forged', {
        spec: {
          volumes,
          initContainers: [{ name: FAIL_OPEN_CONTAINER_NAME, image: IMAGES.init, command: [...FAIL_OPEN_COMMAND], restartPolicy: 'Always', securityContext: netAdmin, ...c }],
        },
      });
    const why = /faultline-failopen: its watcher script only/;
    denied(await create(shop, forged({ command: ['/bin/bash', '-c', 'nft flush ruleset; sleep infinity'] })), why);
    // bash reads its script from argv: extra args or BASH_ENV would run code of the pod author's choosing.
    denied(await create(shop, forged({ args: ['-c', 'id'] })), why);
    denied(await create(shop, forged({ env: [{ name: 'BASH_ENV', value: '/data/evil.sh' }] })), why);
    denied(await create(shop, forged({ volumeMounts: [{ name: 'faultline-token', mountPath: '/var/run/secrets/faultline.dev/serviceaccount' }] }, [{ name: 'faultline-token', emptyDir: {} }])), /mount only the volumes the webhook injects/);
    denied(await create(shop, forged({ securityContext: { ...netAdmin, capabilities: { add: ['NET_ADMIN', 'SYS_ADMIN'], drop: ['ALL'] } } })), /security context the webhook injects/);
    // The app may not reach the watcher's input (or the proxy's hand-off and token) by mounting
    // the volumes the webhook is about to add; the time volume only read-only, as injected.
    // (A pod declaring faultline-time itself is left uninjected, name collision; the policy still holds.)
    for (const [name, readOnly, volumes] of [
      ['faultline-run', true, []],
      ['faultline-token', true, []],
      ['faultline-time', false, [{ name: 'faultline-time', emptyDir: {} }]],
    ] as const)
      denied(
        await create(shop, pod('peek', { spec: { volumes: [...volumes], containers: [{ name: 'app', image: 'busybox', volumeMounts: [{ name, mountPath: '/peek', readOnly }] }] } })),
        /only Faultline's containers mount faultline-run and faultline-token/,
      );
  });

  it('admits injected pods: plain, with network faults (NET_ADMIN kernel) and with IO faults (privileged kernel)', async () => {
    const plainPod = JSON.parse(await kubectlOk(cp(), 'alice', ['create', '--dry-run=server', '-o', 'json', '-n', shop, '-f', '-'], pod('web', { metadata: { labels: { app: 'web' } } }))) as Pod;
    assert.ok(plainPod.metadata.annotations?.[INJECTED_ANNOTATION]);
    for (const [name, spec] of [
      ['lossy', { network: { loss: { percent: 5 } } }],
      ['broken-disk', { io: [{ volumePath: '/data', errno: 'EIO', percent: 10 }] }],
    ] as const) {
      await kubectlOk(cp(), 'alice', ['create', '-n', shop, '-f', '-'], {
        apiVersion: 'chaos.faultline.dev/v1alpha1',
        kind: 'ChaosPolicy',
        metadata: { name },
        spec: { selector: { matchLabels: { app: name } }, duration: '30m', ...spec },
      });
    }
    const withData = (app: string): Pod =>
      pod(app, {
        metadata: { labels: { app } },
        spec: { volumes: [{ name: 'data', emptyDir: {} }], containers: [{ name: 'app', image: 'nginx:1.27', volumeMounts: [{ name: 'data', mountPath: '/data' }] }] },
      });
    // The webhook's cache learns of the policies through its watch.
    for (const [app, privileged] of [['lossy', false], ['broken-disk', true]] as const) {
      const deadline = Date.now() + 10_000;
      let kernel: Record<string, unknown> | undefined;
      let last: KubectlResult | undefined;
      while (!kernel && Date.now() < deadline) {
        last = await create(shop, withData(app));
        assert.equal(last.code, 0, `injected ${app} pod admitted: ${last.stderr}`);
        kernel = (JSON.parse(last.stdout) as Pod).spec.initContainers?.find((c) => c.name === KERNEL_CONTAINER_NAME);
      }
      assert.ok(kernel, `the ${app} pod got faultline-kernel: ${last?.stdout.slice(0, 200)}`);
      assert.equal((kernel.securityContext as { privileged?: boolean }).privileged === true, privileged);
    }
  });

  it('H2: once the tenant revokes privileged faults, a new pod gets no faultline-kernel from the old policy', async function () {
    this.timeout(30_000);
    await kubectlOk(cp(), 'admin', ['patch', 'chaostenant', `tenant-${shop}`, '--type=merge', '-p', JSON.stringify({ spec: { allow: { privileged: false } } })]);
    const lossy = pod('lossy', { metadata: { labels: { app: 'lossy' } } });
    const deadline = Date.now() + 10_000;
    let kernel: unknown = true;
    while (kernel && Date.now() < deadline) {
      const res = await create(shop, lossy);
      assert.equal(res.code, 0, res.stderr);
      kernel = (JSON.parse(res.stdout) as Pod).spec.initContainers?.find((c) => c.name === KERNEL_CONTAINER_NAME);
    }
    assert.equal(kernel, undefined, 'the revoked policy still reached a new pod');
  });

  it('denies `kubectl set image` on Faultline’s containers, and lets the app’s own image change', async () => {
    await kubectlOk(cp(), 'alice', ['create', '-n', shop, '-f', '-'], pod('stored', { metadata: { labels: { app: 'stored' } } }));
    for (const c of [PROXY_CONTAINER_NAME, 'faultline-init']) {
      denied(await cp().kubectl('alice', ['set', 'image', 'pod/stored', `${c}=busybox`, '-n', shop]), /images of Faultline's containers cannot change/);
    }
    await kubectlOk(cp(), 'alice', ['set', 'image', 'pod/stored', 'app=nginx:1.28', '-n', shop]);
  });

  it('leaves namespaces without the chaos label to Pod Security Admission’s own labels', async () => {
    const res = await create(plain, rootme({ hostPID: true }));
    assert.equal(res.code, 0, res.stderr);
  });
});

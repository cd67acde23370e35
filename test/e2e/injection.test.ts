// Pod injection through a real kube-apiserver: the shipped webhook
// configuration (selectors, match conditions, failurePolicy, timeout), the
// webhook process, and the API server's own validation of what it renders.
import assert from 'node:assert/strict';
import { pinnedVersions } from '../../controlplane/binaries.ts';
import { VERSION } from '../../common/version.ts';
import { FAIL_OPEN_CONTAINER_NAME, INIT_CONTAINER_NAME, PROXY_CONTAINER_NAME } from '../../contract/pod-layout.ts';
import {
  API_GROUP_VERSION,
  CHAOS_LABEL,
  CHAOS_LABEL_ENABLED,
  INJECT_OPT_OUT,
  INJECTED_ANNOTATION,
  POD_SECURITY_ENFORCE_LABEL,
  WEBHOOK_CONFIGURATION_NAME,
  WEBHOOK_NAMES,
} from '../../policies/wellknown.ts';
import { containerNames, freshNamespace, getJson, kubectlOk, pod, useControlPlane, type Pod } from '../support/e2e-cluster.ts';

/** Asserts the pod as stored carries Faultline's containers exactly once, ahead of its own init containers. */
function assertInjected(stored: Pod, ownInit: string[] = []): void {
  const { init, main } = containerNames(stored);
  assert.deepEqual(init, [INIT_CONTAINER_NAME, FAIL_OPEN_CONTAINER_NAME, PROXY_CONTAINER_NAME, ...ownInit], 'init containers');
  assert.equal(stored.spec.initContainers![0]!.restartPolicy, undefined, `${INIT_CONTAINER_NAME} is a plain init container`);
  assert.equal(stored.spec.initContainers![1]!.restartPolicy, 'Always', `${FAIL_OPEN_CONTAINER_NAME} is a native sidecar`);
  assert.equal(stored.spec.initContainers![2]!.restartPolicy, 'Always', `${PROXY_CONTAINER_NAME} is a native sidecar`);
  assert.ok(!main.some((n) => n.startsWith('faultline-')), `no Faultline container among the app containers: ${main.join(', ')}`);
  assert.equal(stored.metadata.annotations?.[INJECTED_ANNOTATION], VERSION);
}

function assertUntouched(stored: Pod, ownInit: string[] = []): void {
  assert.deepEqual(containerNames(stored).init, ownInit, 'init containers');
  assert.equal(stored.metadata.annotations?.[INJECTED_ANNOTATION], undefined, `no ${INJECTED_ANNOTATION} annotation`);
}

describe('e2e: pod injection through kube-apiserver', function () {
  const cp = useControlPlane();

  it('injects faultline-init and the native sidecar faultline-proxy into a tenant pod in a chaos namespace, once', async () => {
    const ns = await freshNamespace(cp(), { chaos: true, editor: 'alice' });
    await kubectlOk(cp(), 'alice', ['create', '-n', ns, '-f', '-'], pod('web'));
    assertInjected(await getJson<Pod>(cp(), 'alice', ['pod', 'web', '-n', ns]));
  });

  it('prints no admission warning to the user who creates an injected pod', async () => {
    const ns = await freshNamespace(cp(), { chaos: true, editor: 'alice' });
    const created = await cp().kubectl('alice', ['create', '-n', ns, '-f', '-'], { input: JSON.stringify(pod('web')) });
    assert.equal(created.code, 0, created.stderr);
    // Whenever the API server re-invokes the webhook on an injected pod
    // (reinvocationPolicy: IfNeeded, after another plugin changed it), that
    // second pass must be a silent no-op: "proxy not injected" on an injected
    // pod would be false, and would teach users to ignore real warnings.
    assert.equal(created.stderr, '', 'kubectl prints no admission warnings');
  });

  it('costs one webhook call per pod: the injected containers already carry the service-account token mount', async () => {
    const ns = await freshNamespace(cp(), { chaos: true, editor: 'alice' });
    // The apiserver's own count of calls to the pod webhook (admit type).
    const calls = async (): Promise<number> => {
      const text = await kubectlOk(cp(), 'admin', ['get', '--raw', '/metrics']);
      return text
        .split('\n')
        .filter((l) => l.startsWith('apiserver_admission_webhook_admission_duration_seconds_count') && l.includes(`name="${WEBHOOK_NAMES.mutatePods}"`))
        .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    };
    const before = await calls();
    await kubectlOk(cp(), 'alice', ['create', '-n', ns, '-f', '-'], pod('web'));
    assert.equal((await calls()) - before, 1, 'the webhook is called once, not re-invoked after the ServiceAccount plugin');
    const stored = await getJson<Pod>(cp(), 'alice', ['pod', 'web', '-n', ns]);
    assertInjected(stored);
    const appMount = stored.spec.containers[0]!.volumeMounts?.find((m) => m.mountPath === '/var/run/secrets/kubernetes.io/serviceaccount');
    assert.ok(appMount, 'the app container got the token mount from the ServiceAccount plugin');
    for (const c of stored.spec.initContainers!.slice(0, 3)) assert.ok(c.volumeMounts?.some((m) => m.name === appMount.name), c.name);
  });

  it('gives the proxy no token when the ServiceAccount sets automountServiceAccountToken: false (issue 13 M6)', async () => {
    const ns = await freshNamespace(cp(), { chaos: true, editor: 'alice' });
    const sa = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'quiet', namespace: ns }, automountServiceAccountToken: false };
    await kubectlOk(cp(), 'admin', ['create', '-f', '-'], sa);
    await kubectlOk(cp(), 'alice', ['create', '-n', ns, '-f', '-'], pod('quiet', { spec: { serviceAccountName: 'quiet' } }));
    await kubectlOk(cp(), 'alice', ['create', '-n', ns, '-f', '-'], pod('web'));
    const tokenMounts = (p: Pod): string[] =>
      p.spec.initContainers!.slice(0, 3).flatMap((c) => (c.volumeMounts ?? []).filter((m) => /serviceaccount/.test(m.mountPath)).map((m) => `${c.name}:${m.mountPath}`));
    const stored = await getJson<Pod>(cp(), 'alice', ['pod', 'quiet', '-n', ns]);
    assertInjected(stored);
    assert.deepEqual(tokenMounts(stored), [], 'no Faultline container mounts a token the ServiceAccount withholds');
    assert.doesNotMatch(JSON.stringify(stored.spec.volumes ?? []), /serviceAccountToken/, 'no projected token volume at all');
    // The default ServiceAccount still automounts: the proxy gets its token.
    assert.ok(tokenMounts(await getJson<Pod>(cp(), 'alice', ['pod', 'web', '-n', ns])).includes(`${PROXY_CONTAINER_NAME}:/var/run/secrets/faultline.dev/serviceaccount`));
  });

  it('leaves pods alone in a namespace without the chaos label', async () => {
    const ns = await freshNamespace(cp(), { editor: 'alice' });
    await kubectlOk(cp(), 'alice', ['create', '-n', ns, '-f', '-'], pod('web'));
    assertUntouched(await getJson<Pod>(cp(), 'alice', ['pod', 'web', '-n', ns]));
  });

  it('leaves kube-system alone even when it carries the chaos label', async () => {
    const name = `sys-${Date.now()}`;
    await kubectlOk(cp(), 'admin', ['label', 'namespace', 'kube-system', `${CHAOS_LABEL}=${CHAOS_LABEL_ENABLED}`, '--overwrite']);
    try {
      await kubectlOk(cp(), 'admin', ['create', '-n', 'kube-system', '-f', '-'], pod(name));
    } finally {
      await kubectlOk(cp(), 'admin', ['label', 'namespace', 'kube-system', `${CHAOS_LABEL}-`]);
    }
    assertUntouched(await getJson<Pod>(cp(), 'admin', ['pod', name, '-n', 'kube-system']));
  });

  it(`leaves pods opted out with ${INJECT_OPT_OUT}: "false" alone, as a label or an annotation`, async () => {
    const ns = await freshNamespace(cp(), { chaos: true, editor: 'alice' });
    await kubectlOk(cp(), 'alice', ['create', '-n', ns, '-f', '-'], pod('by-label', { metadata: { labels: { [INJECT_OPT_OUT]: 'false' } } }));
    await kubectlOk(cp(), 'alice', ['create', '-n', ns, '-f', '-'], pod('by-annotation', { metadata: { annotations: { [INJECT_OPT_OUT]: 'false' } } }));
    assertUntouched(await getJson<Pod>(cp(), 'alice', ['pod', 'by-label', '-n', ns]));
    assertUntouched(await getJson<Pod>(cp(), 'alice', ['pod', 'by-annotation', '-n', ns]));
  });

  /** Creates `manifest` as alice; the pod must be stored uninjected, and kubectl must show the webhook's warning. */
  async function assertCreatedUninjected(ns: string, manifest: Pod, reason: string): Promise<void> {
    const created = await cp().kubectl('alice', ['create', '-n', ns, '-f', '-'], { input: JSON.stringify(manifest) });
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stderr, new RegExp(`Warning: faultline: proxy not injected \\(${reason}\\)`));
    assertUntouched(await getJson<Pod>(cp(), 'alice', ['pod', manifest.metadata.name, '-n', ns]));
  }

  it('creates a Windows pod in a chaos namespace uninjected, with a warning (the API server forbids our securityContext on it)', async () => {
    const ns = await freshNamespace(cp(), { chaos: true, editor: 'alice' });
    const windows = pod('iis', {
      spec: {
        os: { name: 'windows' },
        nodeSelector: { 'kubernetes.io/os': 'windows' },
        securityContext: { windowsOptions: { runAsUserName: 'ContainerUser' } },
        containers: [{ name: 'iis', image: 'mcr.microsoft.com/windows/servercore/iis:windowsservercore-ltsc2022' }],
      },
    });
    await assertCreatedUninjected(ns, windows, 'windows-pod');
  });

  it('creates pods in a chaos namespace enforcing Pod Security baseline or restricted uninjected, with a warning', async () => {
    const baseline = await freshNamespace(cp(), { chaos: true, editor: 'alice', labels: { [POD_SECURITY_ENFORCE_LABEL]: 'baseline' } });
    await assertCreatedUninjected(baseline, pod('web'), 'pod-security');
    const restricted = await freshNamespace(cp(), { chaos: true, editor: 'alice', labels: { [POD_SECURITY_ENFORCE_LABEL]: 'restricted' } });
    // A pod the restricted profile admits; injected, faultline-init (root, NET_ADMIN) would get it refused.
    const compliant = pod('web', {
      spec: {
        securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [{ name: 'app', image: 'nginx:1.27', securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } }],
      },
    });
    await assertCreatedUninjected(restricted, compliant, 'pod-security');
  });

  it('shows the injected spec on a server-side dry run and stores nothing', async () => {
    const ns = await freshNamespace(cp(), { chaos: true, editor: 'alice' });
    const out = await kubectlOk(cp(), 'alice', ['apply', '--dry-run=server', '-o', 'json', '-n', ns, '-f', '-'], pod('web'));
    assertInjected(JSON.parse(out) as Pod);
    const get = await cp().kubectl('alice', ['get', 'pod', 'web', '-n', ns]);
    assert.notEqual(get.code, 0, 'the dry-run pod must not exist');
    assert.match(get.stderr, /NotFound/);
  });

  describe('rendered pods pass the API server’s own validation', function () {
    it('a Deployment-shaped pod with probes, named ports, resources and a security context', async () => {
      const ns = await freshNamespace(cp(), { chaos: true, editor: 'alice' });
      const app = {
        name: 'checkout',
        image: 'ghcr.io/example/checkout:1.4.2',
        ports: [
          { name: 'http', containerPort: 8080 },
          { name: 'metrics', containerPort: 9090 },
        ],
        readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 5 },
        livenessProbe: { tcpSocket: { port: 'http' } },
        startupProbe: { httpGet: { path: '/started', port: 8080 }, failureThreshold: 30 },
        resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } },
        securityContext: { runAsNonRoot: true, runAsUser: 1000, allowPrivilegeEscalation: false },
      };
      const manifest = pod('checkout-7d9f8b6c5d-x2x9q', {
        metadata: { labels: { app: 'checkout', 'pod-template-hash': '7d9f8b6c5d' } },
        spec: {
          containers: [app, { name: 'log-shipper', image: 'fluent/fluent-bit:3.1' }],
          securityContext: { fsGroup: 2000 },
          volumes: [{ name: 'data', emptyDir: {} }],
          terminationGracePeriodSeconds: 30,
        },
      });
      await kubectlOk(cp(), 'alice', ['create', '-n', ns, '-f', '-'], manifest);
      const stored = await getJson<Pod>(cp(), 'alice', ['pod', manifest.metadata.name, '-n', ns]);
      assertInjected(stored);
      assert.deepEqual(containerNames(stored).main, ['checkout', 'log-shipper']);
    });

    it('a Job pod (restartPolicy Never, backoff labels)', async () => {
      const ns = await freshNamespace(cp(), { chaos: true, editor: 'alice' });
      const manifest = pod('migrate-abcde', {
        metadata: { labels: { 'batch.kubernetes.io/job-name': 'migrate', 'job-name': 'migrate' } },
        spec: {
          restartPolicy: 'Never',
          containers: [{ name: 'migrate', image: 'ghcr.io/example/migrate:2', command: ['/migrate', '--up'] }],
        },
      });
      await kubectlOk(cp(), 'alice', ['create', '-n', ns, '-f', '-'], manifest);
      assertInjected(await getJson<Pod>(cp(), 'alice', ['pod', manifest.metadata.name, '-n', ns]));
    });

    it('a pod with init containers of its own, which keep their order after Faultline’s', async () => {
      const ns = await freshNamespace(cp(), { chaos: true, editor: 'alice' });
      const manifest = pod('with-init', {
        spec: {
          initContainers: [
            { name: 'wait-for-db', image: 'busybox:1.36', command: ['sh', '-c', 'until nc -z db 5432; do sleep 1; done'] },
            { name: 'own-sidecar', image: 'envoyproxy/envoy:v1.31', restartPolicy: 'Always' },
          ],
        },
      });
      await kubectlOk(cp(), 'alice', ['create', '-n', ns, '-f', '-'], manifest);
      assertInjected(await getJson<Pod>(cp(), 'alice', ['pod', 'with-init', '-n', ns]), ['wait-for-db', 'own-sidecar']);
    });
  });

  describe('failurePolicy: Ignore — chaos never stops a workload from starting', function () {
    let timeoutSeconds = 0;

    before(async () => {
      // The bound under test is the shipped one, read back from the cluster.
      const config = await getJson<{ webhooks: Array<{ name: string; timeoutSeconds: number; failurePolicy: string }> }>(cp(), 'admin', [
        'mutatingwebhookconfiguration',
        WEBHOOK_CONFIGURATION_NAME,
      ]);
      const hook = config.webhooks.find((w) => w.name === WEBHOOK_NAMES.mutatePods);
      assert.ok(hook, `${WEBHOOK_NAMES.mutatePods} is registered`);
      assert.equal(hook.failurePolicy, 'Ignore');
      timeoutSeconds = hook.timeoutSeconds;
    });

    // Whatever a test did to the webhook, the next one gets it back healthy.
    afterEach(async function () {
      this.timeout(60_000);
      if (cp().webhookRunning) cp().resumeWebhook();
      await cp().startWebhook();
    });

    /** Creates a pod as alice, returning the stored pod and how long `kubectl create` took. */
    async function timedCreate(ns: string): Promise<{ stored: Pod; seconds: number }> {
      const t0 = performance.now();
      const out = await kubectlOk(cp(), 'alice', ['create', '-o', 'json', '-n', ns, '-f', '-'], pod('web'));
      return { stored: JSON.parse(out) as Pod, seconds: (performance.now() - t0) / 1000 };
    }

    it('admits pods uninjected while the webhook process is down', async () => {
      const ns = await freshNamespace(cp(), { chaos: true, editor: 'alice' });
      await cp().stopWebhook();
      const { stored, seconds } = await timedCreate(ns);
      assertUntouched(stored);
      assert.ok(seconds < timeoutSeconds + 2, `kubectl create took ${seconds.toFixed(2)} s, bound ${timeoutSeconds + 2} s`);
    });

    it('admits pods uninjected once timeoutSeconds runs out on a hung webhook', async () => {
      const ns = await freshNamespace(cp(), { chaos: true, editor: 'alice' });
      // SIGSTOP: the kernel still accepts the connection, nothing answers.
      cp().suspendWebhook();
      const { stored, seconds } = await timedCreate(ns);
      assertUntouched(stored);
      // At least the timeout (proof the API server did wait for the webhook),
      // at most 2 s more.
      assert.ok(seconds >= timeoutSeconds - 0.1, `kubectl create took ${seconds.toFixed(2)} s, expected ≥ ${timeoutSeconds} s`);
      assert.ok(seconds < timeoutSeconds + 2, `kubectl create took ${seconds.toFixed(2)} s, bound ${timeoutSeconds + 2} s`);
    });

    it('injects again once the webhook is back', async () => {
      const ns = await freshNamespace(cp(), { chaos: true, editor: 'alice' });
      await cp().stopWebhook();
      await cp().startWebhook();
      const { stored } = await timedCreate(ns);
      assertInjected(stored);
    });
  });

  describe('failurePolicy: Fail — no ChaosPolicy is admitted unvalidated', function () {
    afterEach(async function () {
      this.timeout(60_000);
      await cp().startWebhook();
    });

    it('refuses a ChaosPolicy while the webhook process is down, naming the webhook', async () => {
      const ns = await freshNamespace(cp(), { chaos: true, editor: 'alice' });
      await cp().stopWebhook();
      const res = await cp().kubectl('alice', ['create', '-n', ns, '-f', '-'], {
        input: JSON.stringify({
          apiVersion: API_GROUP_VERSION,
          kind: 'ChaosPolicy',
          metadata: { name: 'web-latency' },
          spec: { selector: { matchLabels: { app: 'web' } }, duration: '10m', http: [{ delay: { fixed: '200ms', percent: 50 } }] },
        }),
      });
      assert.notEqual(res.code, 0, 'the policy must be refused');
      assert.match(res.stderr, new RegExp(`failed calling webhook "${WEBHOOK_NAMES.validatePolicies.replaceAll('.', '\\.')}".*connection refused`));
      const get = await cp().kubectl('alice', ['get', 'chaospolicy', 'web-latency', '-n', ns]);
      assert.match(get.stderr, /NotFound/, 'nothing was stored');
    });
  });

  it('serves and ships the pinned Kubernetes version (kubectl version)', async () => {
    const { KUBERNETES_VERSION } = await pinnedVersions();
    const v = JSON.parse(await kubectlOk(cp(), 'alice', ['version', '-o', 'json'])) as {
      clientVersion: { gitVersion: string };
      serverVersion: { gitVersion: string };
    };
    assert.equal(v.clientVersion.gitVersion, KUBERNETES_VERSION);
    assert.equal(v.serverVersion.gitVersion, KUBERNETES_VERSION);
  });
});

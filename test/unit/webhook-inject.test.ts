// Pure rendering (no server): kernel-plan parts of the contract, JSON Pointer
// escaping, and the injection config's validation.
import assert from 'node:assert/strict';
import fjp from 'fast-json-patch';
import type { V1Pod } from '@kubernetes/client-node';
import type { KernelFaultPlan } from '../../contract/plans.ts';
import { ConfigError, loadInjectionConfig } from '../../webhook/injection-config.ts';
import { createInjector, escapePointer } from '../../webhook/inject.ts';
import { admittedByServiceAccountPlugin } from '../support/service-account-plugin.ts';

const { applyPatch, deepClone } = fjp;
const injector = createInjector(loadInjectionConfig({}, {}));
const base = {
  chaosId: 'shop/p',
  expiresAt: Date.parse('2030-01-01T00:00:00Z'),
};

function podWith(spec: Partial<NonNullable<V1Pod['spec']>> = {}): V1Pod {
  return {
    metadata: { name: 'p', annotations: { 'a/b~c': 'x' } },
    spec: {
      containers: [
        { name: 'app', image: 'app', volumeMounts: [{ name: 'data', mountPath: '/data' }], env: [{ name: 'A', value: '1' }] },
        { name: 'side', image: 'side' },
      ],
      volumes: [{ name: 'data', emptyDir: {} }],
      ...spec,
    },
  };
}

function inject(pod: V1Pod, kernel?: KernelFaultPlan): V1Pod {
  const r = injector.render(pod, { name: 'shop' }, kernel);
  assert.ok(r.injected, r.injected ? '' : `${r.reason}: ${r.message}`);
  return applyPatch(deepClone(pod), r.patch, true).newDocument as V1Pod;
}

describe('webhook: injection rendering', () => {
  it('escapes / and ~ in annotation keys (RFC 6901)', () => {
    assert.equal(escapePointer('faultline.dev/injected'), 'faultline.dev~1injected');
    assert.equal(escapePointer('a~/b'), 'a~0~1b');
  });

  it('with an empty kernel plan: NET_ADMIN only, no kernel sidecar, no time volume', () => {
    const pod = inject(admittedByServiceAccountPlugin(podWith()));
    const init = pod.spec!.initContainers![0]!;
    assert.deepEqual(init.securityContext!.capabilities, { add: ['NET_ADMIN'], drop: ['ALL'] });
    assert.equal(init.securityContext!.runAsUser, 0);
    assert.equal(init.securityContext!.runAsNonRoot, false);
    assert.deepEqual(pod.spec!.initContainers!.map((c) => c.name), ['faultline-init', 'faultline-failopen', 'faultline-proxy']);
    assert.ok(!pod.spec!.volumes!.some((v) => v.name === 'faultline-time'));
    assert.equal(pod.metadata!.annotations!['a/b~c'], 'x');
    assert.deepEqual(JSON.parse(pod.metadata!.annotations!['faultline.dev/plan']!), { traffic: 'capture', kernel: [] });
    const proxy = pod.spec!.initContainers![2]!;
    assert.equal(proxy.securityContext!.runAsUser, 16337);
    assert.equal(proxy.startupProbe!.httpGet!.port, 16021);
    // Capture needs the pod's and the node's addresses (downward API).
    for (const [name, fieldPath] of [['POD_IP', 'status.podIP'], ['POD_IPS', 'status.podIPs'], ['HOST_IP', 'status.hostIP'], ['HOST_IPS', 'status.hostIPs']])
      assert.equal(proxy.env!.find((e) => e.name === name)?.valueFrom?.fieldRef?.fieldPath, fieldPath);
    const token = pod.spec!.volumes!.find((v) => v.name === 'faultline-token')!;
    assert.equal(token.projected!.sources![0]!.serviceAccountToken!.expirationSeconds, 3600);
    assert.ok(proxy.volumeMounts!.some((m) => m.name === 'faultline-token' && m.readOnly));
  });

  it('faultline-failopen: a bash native sidecar before the proxy, as privileged as faultline-kernel\'s network variant and no more', () => {
    const pod = inject(admittedByServiceAccountPlugin(podWith()));
    const failOpen = pod.spec!.initContainers![1]!;
    assert.equal(failOpen.name, 'faultline-failopen');
    assert.equal(failOpen.restartPolicy, 'Always');
    assert.equal(failOpen.image, pod.spec!.initContainers![0]!.image);
    assert.deepEqual(failOpen.command, ['/usr/bin/tini', '--', '/bin/bash', '/app/dist/fail-open-watch.sh']);
    assert.equal(failOpen.args, undefined);
    assert.equal(failOpen.env, undefined, 'no plan, no pod identity: it needs neither');
    assert.deepEqual(failOpen.securityContext, {
      runAsUser: 0, runAsGroup: 0, runAsNonRoot: false, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true,
      capabilities: { add: ['NET_ADMIN'], drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
    });
    // The run volume (the FIFO), and the API token the ServiceAccount plugin would add anyway; never faultline-token.
    assert.deepEqual(failOpen.volumeMounts!.map((m) => m.name), ['faultline-run', 'kube-api-access-t0k3n']);
    assert.deepEqual(failOpen.resources, { requests: { cpu: '10m', memory: '16Mi' }, limits: { memory: '16Mi' } });
    assert.equal(failOpen.startupProbe, undefined, 'nothing waits for it: the proxy starts right behind it');
  });

  it('time fault: faultline-time volume, read-only mount and faketime env on the named containers only', () => {
    const pod = inject(podWith(), { io: [], time: { ...base, offsetMs: -7_200_000, containers: ['app'] } });
    assert.ok(pod.spec!.volumes!.some((v) => v.name === 'faultline-time' && v.emptyDir));
    const [app, side] = pod.spec!.containers;
    assert.deepEqual(app!.env!.map((e) => e.name), ['A', 'LD_PRELOAD', 'FAKETIME_TIMESTAMP_FILE', 'FAKETIME_NO_CACHE', 'FAKETIME_DONT_FAKE_MONOTONIC']);
    assert.ok(app!.volumeMounts!.some((m) => m.name === 'faultline-time' && m.readOnly === true && m.mountPath === '/var/run/faultline-time'));
    assert.equal(side!.env, undefined);
    assert.equal(side!.volumeMounts, undefined);
    for (const c of [pod.spec!.initContainers![0]!, pod.spec!.initContainers![2]!]) assert.ok(c.volumeMounts!.some((m) => m.name === 'faultline-time' && !m.readOnly));
  });

  it('time fault with no containers listed applies to every app container (creating env/volumeMounts)', () => {
    const pod = inject(podWith(), { io: [], time: { ...base, offsetMs: 60_000, containers: [] } });
    assert.equal(pod.spec!.containers[1]!.env![0]!.name, 'LD_PRELOAD');
  });

  it('time fault refuses to override an existing LD_PRELOAD and unknown containers', () => {
    const pod = podWith();
    pod.spec!.containers[0]!.env!.push({ name: 'LD_PRELOAD', value: '/lib/x.so' });
    const r = injector.render(pod, { name: 'shop' }, { io: [], time: { ...base, offsetMs: 1, containers: ['app'] } });
    assert.ok(!r.injected && r.reason === 'invalid-plan' && /LD_PRELOAD/.test(r.message));
    const r2 = injector.render(podWith(), { name: 'shop' }, { io: [], time: { ...base, offsetMs: 1, containers: ['nope'] } });
    assert.ok(!r2.injected && /nope/.test(r2.message));
  });

  it('IO fault: init stays NET_ADMIN-only, privileged faultline-kernel with Bidirectional mount, app mount HostToContainer', () => {
    const io: KernelFaultPlan = { io: [{ ...base, volumePath: '/data', path: '/data/**', methods: ['read'], errno: 'EIO', delayMs: 0, percent: 10 }] };
    const pod = inject(podWith(), io);
    const [init, , proxy, kernel] = pod.spec!.initContainers!;
    assert.deepEqual(init!.securityContext!.capabilities!.add, ['NET_ADMIN']);
    assert.equal(proxy!.name, 'faultline-proxy');
    assert.equal(kernel!.name, 'faultline-kernel');
    assert.equal(kernel!.restartPolicy, 'Always');
    assert.equal(kernel!.securityContext!.privileged, true);
    assert.equal(kernel!.command, undefined);
    assert.deepEqual(kernel!.args, ['kernel', '--volume', '/data=/var/run/faultline-io/data']);
    assert.deepEqual(kernel!.startupProbe!.exec!.command, ['test', '-f', '/var/run/faultline/kernel-ready']);
    assert.ok(kernel!.volumeMounts!.some((m) => m.name === 'data' && m.mountPropagation === 'Bidirectional'));
    assert.equal(pod.spec!.containers[0]!.volumeMounts![0]!.mountPropagation, 'HostToContainer');
    const r = injector.render(podWith(), { name: 'shop' }, { io: [{ ...io.io[0]!, volumePath: '/nowhere' }] });
    assert.ok(!r.injected && r.reason === 'invalid-plan' && /\/nowhere/.test(r.message));
  });

  it('network fault: an unprivileged faultline-kernel with NET_ADMIN takes the qdisc off at expiry, with the token to watch the pause switches', () => {
    // As the apiserver hands the pod over: the ServiceAccount plugin gave the app a token, so ours get one too (issue 13 M6).
    const pod = inject(admittedByServiceAccountPlugin(podWith()), { io: [], network: { ...base, device: 'eth0', rateBitsPerSec: 1_000_000 } });
    const kernel = pod.spec!.initContainers![3]!;
    assert.equal(kernel.name, 'faultline-kernel');
    assert.equal(kernel.securityContext!.privileged, undefined);
    assert.equal(kernel.securityContext!.allowPrivilegeEscalation, false);
    assert.deepEqual(kernel.securityContext!.capabilities, { add: ['NET_ADMIN'], drop: ['ALL'] });
    assert.deepEqual(kernel.args, ['kernel']);
    assert.deepEqual(kernel.volumeMounts!.map((m) => m.name), ['faultline-run', 'faultline-token', 'kube-api-access-t0k3n']);
    assert.equal(kernel.volumeMounts![1]!.readOnly, true);
    // Sized on its own (--kernel-memory): it stays for the pod's lifetime, init does not.
    assert.deepEqual(kernel.resources, { requests: { cpu: '10m', memory: '128Mi' }, limits: { memory: '128Mi' } });
    assert.deepEqual(pod.spec!.initContainers![0]!.resources, { requests: { cpu: '10m', memory: '160Mi' }, limits: { memory: '160Mi' } });
  });

  it('carries the token mount the ServiceAccount plugin gave the app, so the plugin has nothing to add (no second webhook call)', () => {
    const tokenMount = { name: 'kube-api-access-x7k2p', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true };
    const pod = podWith();
    pod.spec!.volumes = [...(pod.spec!.volumes ?? []), { name: 'kube-api-access-x7k2p', projected: { sources: [] } }];
    pod.spec!.containers[0]!.volumeMounts = [...(pod.spec!.containers[0]!.volumeMounts ?? []), tokenMount];
    const injected = inject(pod);
    for (const c of injected.spec!.initContainers!.slice(0, 2)) assert.deepEqual(c.volumeMounts!.at(-1), tokenMount, c.name);
    // No automounted token (automountServiceAccountToken: false): nothing to carry.
    for (const c of inject(podWith()).spec!.initContainers!.slice(0, 2))
      assert.ok(!c.volumeMounts!.some((m) => m.mountPath === tokenMount.mountPath), c.name);
  });

  it('gives the proxy no token when the pod or its ServiceAccount sets automountServiceAccountToken: false (issue 13 M6)', () => {
    const hasToken = (p: V1Pod): boolean =>
      (p.spec!.volumes ?? []).some((v) => v.name === 'faultline-token') ||
      p.spec!.initContainers!.some((c) => (c.volumeMounts ?? []).some((m) => m.name === 'faultline-token' || m.mountPath.includes('serviceaccount')));
    assert.equal(hasToken(inject(admittedByServiceAccountPlugin(podWith()))), true, 'by default the proxy watches policies with the pod’s token');
    assert.equal(hasToken(inject(admittedByServiceAccountPlugin(podWith({ automountServiceAccountToken: false })))), false);
    // The ServiceAccount's opt-out reaches the webhook only as the plugin's decision: no kube-api-access mount.
    assert.equal(hasToken(inject(admittedByServiceAccountPlugin(podWith(), false))), false);
    assert.equal(hasToken(inject(admittedByServiceAccountPlugin(podWith({ automountServiceAccountToken: true }), false))), true);
  });

  it('creates /metadata/annotations when the pod has none', () => {
    const pod = inject({ metadata: { name: 'p' }, spec: { containers: [{ name: 'a', image: 'a' }] } });
    assert.equal(pod.metadata!.annotations!['faultline.dev/injected'] !== undefined, true);
  });

});

describe('webhook: injection config', () => {
  it('defaults come from common/images.ts and wellknown ports', () => {
    const c = loadInjectionConfig({}, {});
    assert.match(c.proxyImage, /faultline-proxy:v/);
    assert.equal(c.ports.health, 16021);
    assert.equal(c.ports.inbound, 16006);
    assert.equal(c.ports.outbound, 16001);
    assert.equal(c.tokenAudience, undefined);
  });

  it('flags win over env, env over defaults', () => {
    const c = loadInjectionConfig({ 'proxy-uid': '2000' }, { FAULTLINE_PROXY_UID: '3000', FAULTLINE_PROXY_IMAGE: 'r.example.com/p:1' });
    assert.equal(c.proxyUid, 2000);
    assert.equal(c.proxyImage, 'r.example.com/p:1');
  });

  it('names every invalid setting at once', () => {
    assert.throws(
      () =>
        loadInjectionConfig(
          { 'proxy-uid': '0', 'image-pull-policy': 'Sometimes' },
          { FAULTLINE_PROXY_MEMORY_LIMIT: '1 GB', FAULTLINE_PROXY_HEALTH_PORT: '16006', FAULTLINE_TOKEN_EXPIRATION_SECONDS: '60' },
        ),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        for (const part of ['--proxy-uid', '--image-pull-policy', 'FAULTLINE_PROXY_MEMORY_LIMIT', 'proxy health and inbound ports are both 16006', '--token-expiration-seconds'])
          assert.ok(err.message.includes(part), `${part} missing from: ${err.message}`);
        return true;
      },
    );
  });
});

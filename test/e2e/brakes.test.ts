// The brakes end to end on the real kube-apiserver: the cluster-wide switch
// (annotation on Namespace faultline-system) and a tenant's spec.paused,
// thrown with `faultline pause` and with plain kubectl, with the webhook
// running and stopped. A real `faultline sidecar` runs for an injected pod
// with only the RBAC a pod's service account gets; every switch must end its
// live faults within 1 s of the CLI/kubectl returning. While paused, policy
// writes are denied naming the switch and new pods get no kernel faults.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { CLUSTER_SWITCH_NAMESPACE, PAUSE_ANNOTATION } from '../../policies/switches.ts';
import { KERNEL_CONTAINER_NAME } from '../../contract/pod-layout.ts';
import type { ChaosPolicy, ChaosPolicySpec } from '../../policies/types.ts';
import { containerNames, kubectlOk, pod, useControlPlane, type Pod } from '../support/e2e-cluster.ts';
import { SidecarSuite, waitForPolicy, waitForSidecarBinding } from '../support/e2e-sidecar-cluster.ts';
import type { Endpoint, PodProxy } from '../support/netns-proxy.ts';
import { repoRoot, request, startHttpApp } from '../support/sidecar-harness.ts';

const BOUND_MS = 1_000;
const run = promisify(execFile);

describe('e2e: brakes (cluster-wide and tenant pause switches)', function () {
  this.timeout(180_000);
  const cp = useControlPlane();
  const suite = new SidecarSuite(cp, 'brakes');
  const APP_LABELS = { app: 'web-brake' };
  const POD_NAME = 'web-brake-1';
  const TENANT = 'brake-tenant';
  let ns = '';
  let app: Awaited<ReturnType<typeof startHttpApp>> | undefined;
  let child: PodProxy | undefined;
  /** The pod's app port, reached at its IP: through the proxy. */
  let httpListen: Endpoint;
  const HTTP_PORT = 8080;
  const note = (line: string): void => suite.note(line);
  const policy = (name: string, spec: Partial<ChaosPolicySpec>): ChaosPolicy => SidecarSuite.policy(APP_LABELS, name, spec);
  const apply = (p: ChaosPolicy): Promise<{ code: number; stderr: string }> => suite.apply(p);
  /** `faultline pause|resume …` as the cluster admin; resolves when the CLI has exited 0. */
  async function cli(args: string[]): Promise<number> {
    const node = path.join(repoRoot, 'node_modules', '.bin', 'node');
    await run(node, [path.join(repoRoot, 'bin', 'faultline.js'), ...args, '--kubeconfig', cp().kubeconfigs.admin], { timeout: 20_000 });
    return performance.now();
  }
  async function admin(args: string[]): Promise<number> {
    await kubectlOk(cp(), 'admin', args);
    return performance.now();
  }
  const clusterPause = (): Promise<number> => admin(['annotate', 'namespace', CLUSTER_SWITCH_NAMESPACE, `${PAUSE_ANNOTATION}=true`, '--overwrite']);
  const clusterResume = (): Promise<number> => admin(['annotate', 'namespace', CLUSTER_SWITCH_NAMESPACE, `${PAUSE_ANNOTATION}-`]);
  const tenantPaused = (paused: boolean) => (): Promise<number> => admin(['patch', 'chaostenant', TENANT, '--type=merge', '-p', JSON.stringify({ spec: { paused } })]);

  const aborted = async (): Promise<boolean> => (await request(httpListen, '/api')).status === 503;
  const passedThrough = async (): Promise<boolean> => {
    const r = await request(httpListen, '/api');
    return r.status === 200 && r.headers['x-faultline-fault'] === undefined;
  };
  const timeToEffect = (what: string, since: number, effect: () => Promise<boolean>, giveUpMs?: number): Promise<number> =>
    suite.timeToEffect(child, what, since, effect, giveUpMs);

  /** Throws the switch, measures to all-faults-off, checks the bound, releases it and waits for the faults to come back. */
  async function brake(what: string, pause: () => Promise<number>, resume: () => Promise<number>): Promise<number> {
    await timeToEffect(`${what}: faults on before the brake`, performance.now(), aborted);
    let ms: number;
    try {
      ms = await timeToEffect(what, await pause(), passedThrough);
      // Stays off: a second look a moment later still passes through.
      await sleep(300);
      assert.ok(await passedThrough(), `${what}: faults came back while paused`);
    } finally {
      const since = await resume();
      const back = await timeToEffect(`${what}: resume`, since, aborted);
      note(`${what}: resume → faults back in ${back.toFixed(0)} ms`);
    }
    note(`${what}: all live faults off ${ms.toFixed(0)} ms after the command returned`);
    assert.ok(ms <= BOUND_MS, `${what} took ${ms.toFixed(0)} ms (bound ${BOUND_MS} ms)`);
    return ms;
  }

  before(async function () {
    this.timeout(120_000);
    await suite.setUp({ kinds: ['http.abort', 'network.delay'], privileged: true, limits: { maxDuration: '1h', maxDelay: '1s' } }, { tenant: TENANT });
    ns = suite.ns;
    const stored = await suite.createPod(POD_NAME, APP_LABELS, [HTTP_PORT]);
    await waitForSidecarBinding(cp(), ns);

    // Least privilege: a pod's service account reads the switch object and the tenants, nothing more.
    const can = (args: string[]): Promise<string> => suite.serviceAccountCan(args);
    assert.equal(await can(['watch', `namespaces/${CLUSTER_SWITCH_NAMESPACE}`]), 'yes');
    assert.equal(await can(['get', 'namespaces/default']), 'no', 'only the switch namespace');
    assert.equal(await can(['patch', `namespaces/${CLUSTER_SWITCH_NAMESPACE}`]), 'no', 'read-only');
    assert.equal(await can(['watch', 'chaostenants.chaos.faultline.dev']), 'yes');
    assert.equal(await can(['patch', 'chaostenants.chaos.faultline.dev']), 'no', 'read-only');

    const px = await suite.startSidecar(stored);
    child = px;
    app = await startHttpApp((s) => px.listen(s, HTTP_PORT));
    httpListen = px.endpoint(HTTP_PORT);
    const r = await apply(policy('abort-all', { http: [{ abort: { status: 503, percent: 100 } }] }));
    assert.equal(r.code, 0, r.stderr);
    await waitForPolicy(cp(), ns, 'abort-all', 'targets', (p) => (p.status?.targets ?? []).includes(POD_NAME));
  });

  after(async function () {
    this.timeout(60_000);
    // The control plane is shared with the other suites: never leave a brake on.
    await cp().kubectl('admin', ['annotate', 'namespace', CLUSTER_SWITCH_NAMESPACE, `${PAUSE_ANNOTATION}-`]);
    if (!cp().webhookRunning) await cp().startWebhook();
    await suite.tearDown();
    await app?.close();
  });

  it('faultline pause --all ends every live fault within 1 s; policy writes are denied naming the switch; resume is explicit', async () => {
    await timeToEffect('faults on', performance.now(), aborted);
    const since = await cli(['pause', '--all']);
    const ms = await timeToEffect('faultline pause --all', since, passedThrough);
    note(`faultline pause --all (webhook up): all live faults off ${ms.toFixed(0)} ms after the CLI returned`);
    try {
      assert.ok(ms <= BOUND_MS, `took ${ms.toFixed(0)} ms`);
      const ns0 = await cp().kubectl('admin', ['get', 'namespace', CLUSTER_SWITCH_NAMESPACE, '-o', 'json']);
      assert.equal((JSON.parse(ns0.stdout) as Pod).metadata.annotations?.[PAUSE_ANNOTATION], 'true', 'the CLI wrote the kubectl form');
      const denied = await apply(policy('new-while-paused', { http: [{ abort: { status: 503, percent: 50 } }] }));
      assert.notEqual(denied.code, 0, 'a new policy is refused while paused');
      assert.match(denied.stderr, /paused by the cluster-wide switch \(annotation faultline\.dev\/paused on Namespace faultline-system\)/);
      // Pausing one's own policy still works (it only stops faults).
      await kubectlOk(cp(), 'alice', ['patch', 'chaospolicy', 'abort-all', '-n', ns, '--type=merge', '-p', '{"spec":{"paused":true}}']);
      const unpause = await cp().kubectl('alice', ['patch', 'chaospolicy', 'abort-all', '-n', ns, '--type=merge', '-p', '{"spec":{"paused":false}}']);
      assert.notEqual(unpause.code, 0, 'unpausing a policy is a change, refused while the switch is on');
      assert.match(unpause.stderr, /paused by the cluster-wide switch/);
      // Nothing resumes by itself.
      await sleep(1_000);
      assert.ok(await passedThrough());
    } finally {
      await cli(['resume', '--all']);
    }
    // The policy's own pause is the author's to release.
    await kubectlOk(cp(), 'alice', ['patch', 'chaospolicy', 'abort-all', '-n', ns, '--type=merge', '-p', '{"spec":{"paused":false}}']);
    const back = await timeToEffect('faultline resume --all', performance.now(), aborted);
    note(`faultline resume --all: faults back ${back.toFixed(0)} ms after unpausing`);
  });

  it('faultline pause --tenant ends the tenant\'s faults; pods admitted meanwhile get no kernel faults', async () => {
    // A network policy for other pods: a pod created now would get faultline-kernel…
    const net = policy('net-delay', { selector: { matchLabels: { app: 'kern' } }, network: { delay: { latency: '50ms' } } });
    const r = await apply(net);
    assert.equal(r.code, 0, r.stderr);
    const dryRun = async (): Promise<Pod> =>
      JSON.parse(await kubectlOk(cp(), 'alice', ['create', '--dry-run=server', '-o', 'json', '-n', ns, '-f', '-'], pod('kern-1', { metadata: { labels: { app: 'kern' } } }))) as Pod;
    const names = (p: Pod): string[] => [...containerNames(p).init, ...containerNames(p).main];
    assert.ok(names(await dryRun()).includes(KERNEL_CONTAINER_NAME), 'before the pause, a new pod gets kernel faults');

    await timeToEffect('faults on', performance.now(), aborted);
    const since = await cli(['pause', '--tenant', TENANT]);
    try {
      const ms = await timeToEffect('faultline pause --tenant', since, passedThrough);
      note(`faultline pause --tenant (webhook up): live faults off ${ms.toFixed(0)} ms after the CLI returned`);
      assert.ok(ms <= BOUND_MS, `took ${ms.toFixed(0)} ms`);
      // …but not while its tenant is paused (the webhook's cache follows the tenant within moments).
      let created: Pod | undefined;
      const deadline = Date.now() + 5_000;
      do {
        created = await dryRun();
        if (!names(created).includes(KERNEL_CONTAINER_NAME)) break;
        await sleep(100);
      } while (Date.now() < deadline);
      assert.ok(!names(created).includes(KERNEL_CONTAINER_NAME), `a pod admitted while paused has no ${KERNEL_CONTAINER_NAME}: ${names(created).join(', ')}`);
      const denied = await apply(policy('net-delay-2', { selector: { matchLabels: { app: 'kern' } }, network: { delay: { latency: '60ms' } } }));
      assert.notEqual(denied.code, 0);
      assert.match(denied.stderr, new RegExp(`paused by ChaosTenant "${TENANT}" spec\\.paused`));
    } finally {
      await cli(['resume', '--tenant', TENANT]);
    }
    await timeToEffect('faultline resume --tenant', performance.now(), aborted);
    await kubectlOk(cp(), 'alice', ['delete', 'chaospolicy', 'net-delay', '-n', ns, '--wait=false']);
  });

  it('with the webhook stopped, both switches (plain kubectl) still end every live fault within 1 s', async () => {
    await cp().stopWebhook();
    try {
      assert.equal(cp().webhookRunning, false);
      // Proof the webhook is really out: a policy write fails closed.
      const refused = await apply(policy('while-down', { http: [{ abort: { status: 503, percent: 10 } }] }));
      assert.notEqual(refused.code, 0, 'policy writes fail while the webhook is down');
      await brake('cluster switch, webhook down (kubectl annotate)', clusterPause, clusterResume);
      await brake('tenant switch, webhook down (kubectl patch spec.paused)', tenantPaused(true), tenantPaused(false));
    } finally {
      await cp().startWebhook();
    }
    await brake('cluster switch, webhook up (kubectl annotate)', clusterPause, clusterResume);
  });
});

// Status confirmed by the datapath, on the real kube-apiserver: an injected pod
// runs in a network namespace on this host (runPod: capture, a real
// `faultline sidecar` with only its ServiceAccount's RBAC, its IP patched in
// as status.podIP); the webhook's reconciler reads the proxy's report from
// podIP:<fl-health>/status and writes appliedPods, the per-pod detail and the
// condition Applied, shows APPLIED in `kubectl get`, and records per-pod
// Events. One fault applies (HTTP on the served port); one can't (a TCP fault
// on a port the pod leaves out of capture: its proxy does not serve it).
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ChaosPolicy } from '../../policies/types.ts';
import { API_GROUP_VERSION, EXCLUDE_INBOUND_PORTS_ANNOTATION } from '../../policies/wellknown.ts';
import { PROXY_HEALTH_PORT_NAME } from '../../contract/pod-layout.ts';
import { freshNamespace, getJson, kubectlOk, pod } from '../support/e2e-cluster.ts';
import { useControlPlane } from '../support/e2e-cluster.ts';
import { createRunningPod, createTenant, proxyContainer, runPod, serviceAccountKubeconfig, waitForPolicy, waitForSidecarBinding } from '../support/e2e-sidecar-cluster.ts';
import type { PodProxy } from '../support/netns-proxy.ts';
import { waitFor } from '../support/sidecar-harness.ts';

const UNSERVED_PORT = 9999;

interface EventList {
  items: Array<{ reason: string; type: string; message: string; related?: { kind?: string; name?: string }; source?: { component?: string } }>;
}

const condition = (p: ChaosPolicy, type: string) => p.status?.conditions?.find((c) => c.type === type);

describe('e2e: status confirmed by the datapath', function () {
  this.timeout(180_000);
  const cp = useControlPlane();
  const LABELS = { app: 'web-status' };
  const POD = 'web-status-1';
  let dir = '';
  let ns = '';
  let app: http.Server | undefined;
  const appPort = 8080;
  let sidecar: PodProxy | undefined;
  let POD_IP = '';
  /** A tiny Prometheus: /api/v1/query answers `promValue` as a one-sample vector. */
  let prom: http.Server | undefined;
  let promUrl = '';
  let promValue = 0;

  before(async function () {
    this.timeout(120_000);
    dir = await mkdtemp(path.join(tmpdir(), 'faultline-e2e-status-'));
    // The proxy runs as its pod's UID and reads the kubeconfig from here.
    await chmod(dir, 0o755);
    ns = await freshNamespace(cp(), { chaos: true, editor: 'alice' });
    prom = http.createServer((req, res) => {
      if (!req.url?.startsWith('/api/v1/query?')) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [{ metric: {}, value: [Date.now() / 1000, String(promValue)] }] } }));
    });
    await new Promise<void>((r) => prom!.listen(0, '127.0.0.1', r));
    promUrl = `http://127.0.0.1:${(prom.address() as net.AddressInfo).port}`;
    await createTenant(cp(), `status-${ns}`, ns, 'tenant-shop', { kinds: ['http.delay', 'tcp.latency'], prometheusUrls: [promUrl], limits: { maxDuration: '1h' } });
    await waitForSidecarBinding(cp(), ns);
    const stored = await createRunningPod(cp(), 'alice', ns, pod(POD, {
      metadata: { labels: LABELS, annotations: { [EXCLUDE_INBOUND_PORTS_ANNOTATION]: String(UNSERVED_PORT) } },
      spec: { containers: [{ name: 'app', image: 'example/app', ports: [{ containerPort: appPort }] }] },
    }));
    const kubeconfig = await serviceAccountKubeconfig(cp(), ns, dir);
    sidecar = await runPod(cp(), stored, kubeconfig);
    POD_IP = sidecar.podIp;
    app = http.createServer((_req, res) => res.end('ok'));
    await sidecar.listen(app, appPort);
    // As a kubelet would: the pod's IP, which the reconciler dials on the proxy's declared health port.
    await kubectlOk(cp(), 'admin', ['patch', 'pod', POD, '-n', ns, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { podIP: POD_IP, podIPs: [{ ip: POD_IP }] } })]);
    const healthPort = (proxyContainer(stored) as { ports?: Array<{ name?: string; containerPort: number }> }).ports?.find((p) => p.name === PROXY_HEALTH_PORT_NAME)?.containerPort;
    assert.equal(healthPort, sidecar.ports.health, 'the injected proxy declares its health port');
  });

  /** waitForPolicy, with what the proxy itself reports when the wait fails. */
  async function waitForReport(name: string, what: string, done: (p: ChaosPolicy) => boolean): Promise<ChaosPolicy> {
    try {
      return await waitForPolicy(cp(), ns, name, what, done, 30_000);
    } catch (err) {
      const report = await fetch(`http://${POD_IP}:${sidecar!.ports.health}/status`).then((r) => r.text(), (e: Error) => e.message);
      throw new Error(`${(err as Error).message}\nthe proxy reports: ${report}\nproxy log:\n${sidecar!.stdout.slice(-20).join('\n')}`);
    }
  }

  after(async function () {
    this.timeout(30_000);
    await sidecar?.close();
    if (app) await new Promise((r) => app!.close(r));
    if (prom) await new Promise((r) => prom!.close(r));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('one fault applied, one not (port not served): appliedPods 1, Applied False PartlyApplied, the APPLIED column, per-pod Events', async () => {
    const spec: ChaosPolicy['spec'] = {
      selector: { matchLabels: LABELS },
      duration: '10m',
      http: [{ name: 'slow', match: { port: appPort }, delay: { fixed: '5ms' } }],
      tcp: [{ port: UNSERVED_PORT, toxics: [{ type: 'latency', latency: 10 }] }],
    };
    await kubectlOk(cp(), 'alice', ['create', '-n', ns, '-f', '-'], { apiVersion: API_GROUP_VERSION, kind: 'ChaosPolicy', metadata: { name: 'partly' }, spec });
    const p = await waitForReport('partly', 'the datapath report', (x) => condition(x, 'Applied')?.reason === 'PartlyApplied');
    assert.equal(p.status!.targetedPods, 1);
    assert.equal(p.status!.appliedPods, 1);
    assert.equal(condition(p, 'Applied')!.status, 'False');
    assert.match(condition(p, 'Applied')!.message!, new RegExp(`pod ${POD}: tcp.latency inbound :${UNSERVED_PORT}: PortNotServed`));
    assert.equal(condition(p, 'Active')!.status, 'True', 'something is faulted: Active');
    const [detail] = p.status!.podReports!;
    assert.equal(detail!.pod, POD);
    assert.equal(detail!.state, 'Partial');
    assert.deepEqual(detail!.applied, [`http.delay inbound :${appPort}`]);
    assert.deepEqual(detail!.notApplied?.map((f) => [f.fault, f.reason]), [[`tcp.latency inbound :${UNSERVED_PORT}`, 'PortNotServed']]);

    // The printer column, as a user sees it.
    const table = (await kubectlOk(cp(), 'alice', ['get', 'chaospolicy', 'partly', '-n', ns])).trim().split('\n').map((l) => l.split(/\s{2,}/));
    const header = table[0]!;
    assert.equal(header[header.indexOf('TARGETED') + 1], 'APPLIED', `APPLIED next to TARGETED: ${header.join(' | ')}`);
    assert.equal(table[1]![header.indexOf('APPLIED')], '1');

    // Per-pod Events from the reconciler, on the policy and related to the pod.
    const events = await getJson<EventList>(cp(), 'alice', ['events', '-n', ns, '--field-selector', 'involvedObject.name=partly']);
    const applied = events.items.find((e) => e.reason === 'FaultsApplied');
    const notApplied = events.items.find((e) => e.reason === 'FaultsNotApplied');
    assert.ok(applied && notApplied, `FaultsApplied and FaultsNotApplied recorded: ${events.items.map((e) => e.reason).join(', ')}`);
    assert.equal(notApplied.type, 'Warning');
    assert.match(notApplied.message, /PortNotServed/);
    assert.deepEqual([applied.related?.kind, applied.related?.name, applied.source?.component], ['Pod', POD, 'faultline-reconciler']);

    // One chaos_id across components: the proxy's log and the reconciler's carry the same uid/generation.
    const chaosId = `${p.metadata.uid}/${p.metadata.generation}`;
    const proxyEvents = sidecar!.stdout.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.event === 'chaos');
    assert.ok(proxyEvents.some((e) => e.chaos_id === chaosId && e.status === 'started' && e.target === `${POD} inbound :${appPort}`), JSON.stringify(proxyEvents));
    const reconcilerLog = await cp().logTail('webhook', 400);
    assert.match(reconcilerLog, new RegExp(`"chaos_id":"${chaosId}".*"status":"not_applied"|"status":"not_applied".*"chaos_id":"${chaosId}"`));

    // Without the unserved fault (a new generation), every fault applies.
    await kubectlOk(cp(), 'alice', ['patch', 'chaospolicy', 'partly', '-n', ns, '--type=json', '-p', JSON.stringify([{ op: 'remove', path: '/spec/tcp' }])]);
    const all = await waitForReport('partly', 'Applied', (x) => condition(x, 'Applied')?.status === 'True');
    assert.equal(condition(all, 'Applied')!.reason, 'Applied');
    assert.equal(all.status!.podReports![0]!.state, 'Applied');
  });

  it('a policy whose only fault the pod cannot apply is never Active: NotApplied, reason NothingApplied', async () => {
    await kubectlOk(cp(), 'alice', ['create', '-n', ns, '-f', '-'], {
      apiVersion: API_GROUP_VERSION, kind: 'ChaosPolicy', metadata: { name: 'nothing' },
      spec: { selector: { matchLabels: LABELS }, duration: '10m', tcp: [{ port: UNSERVED_PORT, toxics: [{ type: 'latency', latency: 10 }] }] },
    });
    const p = await waitForReport('nothing', 'NotApplied', (x) => condition(x, 'Applied')?.reason === 'NotApplied');
    assert.deepEqual([condition(p, 'Active')!.status, condition(p, 'Active')!.reason], ['False', 'NothingApplied']);
    assert.equal(p.status!.appliedPods ?? 0, 0);
    assert.deepEqual(p.status!.targets, [POD], 'still targeted: the fault applies once the datapath can');
  });

  it('abortWhen.prometheus: the reconciler queries the tenant-allowed Prometheus and aborts the policy above the threshold', async () => {
    promValue = 1;
    await kubectlOk(cp(), 'alice', ['create', '-n', ns, '-f', '-'], {
      apiVersion: API_GROUP_VERSION, kind: 'ChaosPolicy', metadata: { name: 'watched' },
      spec: { selector: { matchLabels: LABELS }, duration: '10m', http: [{ match: { port: appPort }, delay: { fixed: '5ms' } }], abortWhen: { prometheus: { url: promUrl, query: 'sum(rate(errors[1m]))', above: 5, interval: '5s' } } },
    });
    await waitForReport('watched', 'Applied', (x) => condition(x, 'Applied')?.status === 'True');
    promValue = 9;
    const aborted = await waitForReport('watched', 'Aborted', (x) => condition(x, 'Aborted')?.status === 'True');
    assert.equal(aborted.status!.abort!.condition, 'prometheus');
    assert.equal(aborted.status!.abort!.observed, 9);
    assert.match(condition(aborted, 'Aborted')!.message!, /Prometheus query value 9 exceeded 5/);
    // The proxy dropped it (it watches the same notice): its report no longer names the policy.
    const named = async (): Promise<boolean> =>
      ((await (await fetch(`http://${POD_IP}:${sidecar!.ports.health}/status`)).json()) as { policies: Array<{ policy: string }> }).policies.some((p) => p.policy === `${ns}/watched`);
    await waitFor('the proxy to drop the aborted policy', async () => !(await named()), 5_000, 50);
  });
});

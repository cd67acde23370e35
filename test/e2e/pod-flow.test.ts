// One pod's whole story, real pieces only: a tenant allowing privileged faults,
// a ChaosPolicy with network loss, a time offset and an HTTP delay written
// first by the tenant user, then a Pod created through the real kube-apiserver
// and injected by the real webhook with the kernel plan; the STORED pod spec
// then runs in the netns pod simulator: faultline init (nft loss fallback,
// libfaketime), faultline-proxy, the app with the pod's env.
//
// The proxy's policy source: the kube-apiserver listens on 127.0.0.1 of the
// root network namespace, which a process inside the pod's namespace cannot
// reach, and the simulator has no route out of it. Rather than bridging
// (a relay through a unix socket would mean teaching the simulator a
// --kubeconfig it does not have), the proxy gets a plan file computed with
// the sidecar's own planner (`livePlanFor`) from the policy exactly as stored,
// including the status.targets the real reconciler wrote for this pod. The
// Kubernetes watch path itself (same planner, ServiceAccount token, live
// changes) is proven in test/e2e/sidecar.test.ts.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { V1Pod } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { livePlanFor } from '../../policies/planner.ts';
import type { ChaosPolicy } from '../../policies/types.ts';
import type { InitPlan } from '../../contract/plans.ts';
import { API_GROUP_VERSION } from '../../policies/wellknown.ts';
import { FAKETIME_LIBRARY, FAKETIME_TIMESTAMP_FILE, INIT_CONTAINER_NAME, PLAN_ENV, TIME_MOUNT_PATH, TIME_VOLUME_NAME } from '../../contract/pod-layout.ts';
import { getJson, kubectlOk, tenantNamespace, useControlPlane, type Pod } from '../support/e2e-cluster.ts';
import { markRunning, proxyPlan, waitForPolicy } from '../support/e2e-sidecar-cluster.ts';
import { appPod, NODE } from '../support/netns-fixtures.ts';
import { isRoot, POD_IP, SimulatedPod } from '../support/netns-pod.ts';
import { udpDelivered } from '../support/netns-probes.ts';

const TWO_HOURS = 2 * 3_600_000;
const CLOCK_TOLERANCE_MS = 3_000; // process start and curl on a loaded machine
const DELAY_MS = 200;
const APP_PORT = 8080;

interface Env {
  name: string;
  value?: string;
}
interface Mount {
  name: string;
  mountPath: string;
}

describe('e2e: one pod from admission to faults (tenant → policy → injected pod → init, proxy, app in network namespaces)', function () {
  this.timeout(180_000);
  const cp = useControlPlane();
  const POD_NAME = 'flow-1';
  const POLICY = 'flow-chaos';
  let dir = '';
  let ns = '';
  let stored: Pod | undefined;
  let sim: SimulatedPod | undefined;

  before(async function () {
    if (!isRoot()) return this.skip(); // the pod simulator needs root: network namespaces, nftables, setpriv
    this.timeout(150_000);
    dir = await mkdtemp(path.join(tmpdir(), 'faultline-e2e-podflow-'));
    ns = await tenantNamespace(cp(), {
      kinds: ['network.loss', 'time.offset', 'http.delay'],
      privileged: true,
      limits: { maxDelay: '2s', maxDuration: '1h', maxLossPercent: 50, maxTimeOffset: '3h' },
    });

    // 1. The policy first, by the tenant user, as a file.
    const policy: ChaosPolicy = {
      apiVersion: API_GROUP_VERSION,
      kind: 'ChaosPolicy',
      metadata: { name: POLICY },
      spec: {
        selector: { matchLabels: { app: 'flow' } },
        mode: { type: 'all' },
        duration: '30m',
        network: { loss: { percent: 20 } },
        time: { offset: '-2h' },
        http: [{ delay: { fixed: `${DELAY_MS}ms`, percent: 100 } }],
      },
    };
    const file = path.join(dir, `${POLICY}.yaml`);
    await writeFile(file, stringify(policy));
    const applied = await cp().kubectl('alice', ['apply', '-n', ns, '-f', file]);
    assert.equal(applied.code, 0, applied.stderr);

    // 2. The pod, through the API server. The webhook plans kernel faults from
    // its informer cache, which learns of the policy a moment after the apply:
    // wait (with server-side dry runs, which run the webhook and store nothing)
    // until admission sees it, then create the pod for real.
    const spec = appPod({ ports: [APP_PORT], runAsUser: 1000 });
    const podObject = { ...spec, metadata: { name: POD_NAME, labels: { app: 'flow' } } } as unknown as Pod;
    const deadline = Date.now() + 15_000;
    for (;;) {
      const dry = JSON.parse(await kubectlOk(cp(), 'alice', ['create', '--dry-run=server', '-o', 'json', '-n', ns, '-f', '-'], podObject)) as Pod;
      if (initPlan(dry).kernel.network !== undefined) break;
      if (Date.now() > deadline) throw new Error(`the webhook never planned the policy's kernel faults within 15 s:\n${await cp().logTail('webhook')}`);
      await sleep(100);
    }
    stored = JSON.parse(await kubectlOk(cp(), 'alice', ['create', '-o', 'json', '-n', ns, '-f', '-'], podObject)) as Pod;
    await markRunning(cp(), ns, POD_NAME);
  });

  after(async function () {
    this.timeout(60_000);
    if (sim) {
      await sim.teardown();
      assert.deepEqual(await sim.leftovers(), []);
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  function initPlan(p: Pod): InitPlan {
    const init = (p.spec.initContainers ?? []).find((c) => c.name === INIT_CONTAINER_NAME) as { env?: Env[] } | undefined;
    const raw = init?.env?.find((e) => e.name === PLAN_ENV)?.value;
    assert.ok(raw, `pod has ${INIT_CONTAINER_NAME} with ${PLAN_ENV}: ${JSON.stringify(p.spec.initContainers?.map((c) => c.name))}`);
    return JSON.parse(raw) as InitPlan;
  }

  it('the stored pod was injected with the kernel plan: loss 20%, time -2h, libfaketime env and mount', () => {
    const plan = initPlan(stored!);
    const chaosId = `${ns}/${POLICY}`;
    assert.equal(plan.kernel.network?.loss?.percent, 20);
    assert.equal(plan.kernel.network?.chaosId, chaosId);
    assert.equal(plan.kernel.time?.offsetMs, -TWO_HOURS);
    assert.equal(plan.kernel.time?.chaosId, chaosId);
    assert.ok(plan.kernel.network!.expiresAt > Date.now() + 25 * 60_000, 'expires with the 30 m duration');
    // The proxy gets the same plan as init (one rendering).
    assert.deepEqual(proxyPlan(stored!).plan, plan);
    // Every connection is captured; no port is wired at admission.
    assert.equal(plan.wiring.capture.inboundPort, 16006);
    assert.deepEqual(Object.keys(plan.wiring).sort(), ['capture', 'proxyUid', 'toxiproxyPort']);

    const app = stored!.spec.containers.find((c) => c.name === 'app') as { env?: Env[]; volumeMounts?: Mount[] };
    const env = Object.fromEntries((app.env ?? []).map((e) => [e.name, e.value]));
    assert.equal(env.LD_PRELOAD, FAKETIME_LIBRARY);
    assert.equal(env.FAKETIME_TIMESTAMP_FILE, FAKETIME_TIMESTAMP_FILE);
    assert.ok((app.volumeMounts ?? []).some((m) => m.name === TIME_VOLUME_NAME && m.mountPath === TIME_MOUNT_PATH), JSON.stringify(app.volumeMounts));
    assert.ok(((stored!.spec.volumes ?? []) as Array<{ name: string }>).some((v) => v.name === TIME_VOLUME_NAME));
  });

  it('runs the stored spec: init applies the nft loss fallback and the faketime file; the app sees -2h; HTTP through the proxy is delayed', async () => {
    // The reconciler targets the running pod; the live plan is the sidecar's planner over the stored policy.
    const policy = await waitForPolicy(cp(), ns, POLICY, 'targets', (p) => (p.status?.targets ?? []).includes(POD_NAME));
    const livePlan = livePlanFor(POD_NAME, [policy], Date.now());
    assert.deepEqual(livePlan.http.map((f) => [f.chaosId, f.delay?.fixedMs]), [[`${ns}/${POLICY}`, DELAY_MS]]);
    assert.equal(livePlan.time?.offsetMs, -TWO_HOURS);

    // Exactly what the API server stored (plus its defaults and the ServiceAccount volume).
    const pod = await getJson<V1Pod>(cp(), 'admin', ['pod', POD_NAME, '-n', ns]);
    sim = new SimulatedPod();
    await sim.start(pod, { livePlan });

    // faultline init: one line about the missing netem, the nft loss rule (or netem itself on a kernel that has it).
    const qdisc = (await sim.execPod(['tc', 'qdisc', 'show', 'dev', 'eth0', 'root'])).stdout;
    const lines = sim.init!.stdout.trim().split('\n').map((l) => JSON.parse(l) as { msg: string });
    if (/netem/.test(qdisc)) {
      assert.match(qdisc, /loss 20%/);
    } else {
      assert.deepEqual(
        lines.filter((l) => l.msg.startsWith('netem unavailable')).map((l) => l.msg),
        ['netem unavailable: kernel lacks sch_netem; falling back to nft loss'],
      );
      const chain = (await sim.execPod(['nft', 'list', 'chain', 'inet', 'faultline', 'loss'])).stdout;
      assert.match(chain, /oifname "eth0" numgen random mod 10000 < 2000 .*drop/);
    }
    const sent = 2000;
    const lost = (100 * (sent - (await udpDelivered(sim, sent)))) / sent;
    process.stderr.write(`[e2e pod-flow] measured egress loss: ${lost.toFixed(1)}% of ${sent} datagrams (policy: 20%)\n`);
    assert.ok(lost >= 15 && lost <= 25, `loss ${lost}%`);

    // Time: the offset file, and the app (started with the pod's env) lives two hours back.
    assert.match(await readFile(sim.faketimeFile, 'utf8'), /^-7200s?\n$/);
    const clock = await sim.execPod(['curl', '-s', '-m', '5', `http://127.0.0.1:${APP_PORT}/time`]);
    assert.equal(clock.code, 0, clock.stderr);
    const appSkew = Number(clock.stdout) - Date.now();
    const fresh = await sim.execIn('app', [NODE, '-e', 'console.log(Date.now())']);
    assert.equal(fresh.code, 0, fresh.stderr);
    const execSkew = Number(fresh.stdout) - Date.now();
    process.stderr.write(`[e2e pod-flow] app clock skew: ${(appSkew / 1000).toFixed(1)} s (running app), ${(execSkew / 1000).toFixed(1)} s (exec with the app's env)\n`);
    assert.ok(Math.abs(appSkew + TWO_HOURS) < CLOCK_TOLERANCE_MS, `running app skew ${appSkew} ms`);
    assert.ok(Math.abs(execSkew + TWO_HOURS) < CLOCK_TOLERANCE_MS, `exec skew ${execSkew} ms`);

    // HTTP from the client namespace to the pod IP: redirected into the proxy, delayed by the policy.
    // 20% egress loss can only make a request slower (retransmits): take the fastest.
    const times: number[] = [];
    const headers: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await sim.execClient(['curl', '-s', '-m', '10', '-D', '-', '-o', '/dev/null', '-w', 'TIME %{time_total}\n', `http://${POD_IP}:${APP_PORT}/`]);
      if (r.code !== 0) continue;
      const m = /TIME ([\d.]+)/.exec(r.stdout);
      if (m) times.push(Number(m[1]) * 1000);
      headers.push(r.stdout);
    }
    process.stderr.write(`[e2e pod-flow] HTTP via proxy (delay ${DELAY_MS} ms, loss 20%): ${times.map((t) => t.toFixed(0)).join(', ')} ms\n`);
    assert.ok(times.length >= 3, `only ${times.length} of 6 requests completed`);
    assert.ok(Math.min(...times) >= DELAY_MS - 2, `fastest request ${Math.min(...times).toFixed(1)} ms`);
    assert.ok(headers.every((h) => /^x-faultline-fault: delay=200ms\r?$/m.test(h)), headers.join('\n---\n'));
    // The response is the app's own.
    let body = '';
    for (let i = 0; i < 3 && body === ''; i++) body = (await sim.execClient(['curl', '-s', '-m', '10', `http://${POD_IP}:${APP_PORT}/hello`])).stdout;
    assert.equal(body, `app ${APP_PORT} /hello`);
  });
});

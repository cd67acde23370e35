// The live datapath end to end against the real kube-apiserver: a tenant's pod
// is injected by the real webhook and targeted by the real reconciler, and runs
// in a network namespace on this host (runPod: `faultline init`'s capture, then
// `faultline sidecar` with the stored pod's FAULTLINE_PLAN, its downward-API
// identity and a kubeconfig holding a TokenRequest token of the namespace's `default`
// ServiceAccount — so the only RBAC it has is the RoleBinding the reconciler
// created. Policies are written with kubectl as the tenant user; every change
// must reach the traffic within 1 s of kubectl returning, and faults must end
// on time while the API server is frozen.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChaosPolicy, ChaosPolicySpec } from '../../policies/types.ts';
import type { LiveFaultPlan } from '../../contract/plans.ts';
import { kubectlOk, useControlPlane } from '../support/e2e-cluster.ts';
import { resumeApiserver, SidecarSuite, suspendApiserver, waitForPolicy, waitForSidecarBinding } from '../support/e2e-sidecar-cluster.ts';
import type { Endpoint, PodProxy } from '../support/netns-proxy.ts';
import { echoRoundTrip, request, startHttpApp, startTcpApp, waitFor } from '../support/sidecar-harness.ts';

/** Policy change → traffic, from kubectl returning (DESIGN: "active in a running sidecar ≤ 1 s"). */
const BOUND_MS = 1_000;
const POLL_MS = 20;
const DELAY_MS = 300;
const TOXIC_LATENCY_MS = 200;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe('e2e: faultline sidecar watching ChaosPolicies through the real API server', function () {
  this.timeout(180_000);
  const cp = useControlPlane();
  const suite = new SidecarSuite(cp, 'sidecar');
  const APP_LABELS = { app: 'web-sc' };
  const POD_NAME = 'web-sc-1';
  let ns = '';
  let app: Awaited<ReturnType<typeof startHttpApp>> | undefined;
  let echo: Awaited<ReturnType<typeof startTcpApp>> | undefined;
  let child: PodProxy | undefined;
  /** The pod's two app ports, reached at its IP: through the proxy. */
  let httpListen: Endpoint;
  let tcpListen: Endpoint;
  const HTTP_PORT = 8080;
  const TCP_PORT = 9000;
  const note = (line: string): void => suite.note(line);
  const policy = (name: string, spec: Partial<ChaosPolicySpec>): ChaosPolicy => SidecarSuite.policy(APP_LABELS, name, spec);

  /** `kubectl apply -f <file>` as alice; resolves when kubectl has returned (the measuring point). */
  async function apply(p: ChaosPolicy): Promise<number> {
    const res = await suite.apply(p);
    assert.equal(res.code, 0, res.stderr);
    return performance.now();
  }
  async function kubectlAsAlice(args: string[]): Promise<number> {
    await kubectlOk(cp(), 'alice', [...args, '-n', ns]);
    return performance.now();
  }

  const aborted = async (): Promise<boolean> => {
    const r = await request(httpListen, '/api');
    return r.status === 503 && r.headers['x-faultline-fault'] === 'abort=503';
  };
  const passedThrough = async (): Promise<boolean> => {
    const r = await request(httpListen, '/api');
    return r.status === 200 && r.body === 'ok GET /api' && r.headers['x-faultline-fault'] === undefined;
  };
  const timeToEffect = (what: string, since: number, effect: () => Promise<boolean>, giveUpMs?: number): Promise<number> =>
    suite.timeToEffect(child, what, since, effect, giveUpMs);

  /** One measured change: `act` returns when kubectl has; the bound applies to the best of two tries (`reset` undoes `act`). */
  async function measuredChange(what: string, act: () => Promise<number>, effect: () => Promise<boolean>, reset: () => Promise<void>): Promise<number> {
    let ms = await timeToEffect(what, await act(), effect);
    if (ms > BOUND_MS) {
      note(`${what}: ${ms.toFixed(0)} ms on the first try; measuring again`);
      await reset();
      ms = await timeToEffect(what, await act(), effect);
    }
    note(`${what}: ${ms.toFixed(0)} ms after kubectl returned`);
    assert.ok(ms <= BOUND_MS, `${what} took ${ms.toFixed(0)} ms (bound ${BOUND_MS} ms)`);
    return ms;
  }

  async function deletePolicy(name: string): Promise<number> {
    return kubectlAsAlice(['delete', 'chaospolicy', name, '--wait=false']);
  }

  before(async function () {
    this.timeout(120_000);
    await suite.setUp({ kinds: ['http.delay', 'http.abort', 'tcp.latency'], limits: { maxDelay: '2s', maxDuration: '1h' } });
    ns = suite.ns;

    const stored = await suite.createPod(POD_NAME, APP_LABELS, [HTTP_PORT, TCP_PORT]);

    // Least privilege: the namespace's service accounts may read its policies and nothing more.
    await waitForSidecarBinding(cp(), ns);
    const can = (args: string[]): Promise<string> => suite.serviceAccountCan(args);
    assert.equal(await can(['watch', 'chaospolicies.chaos.faultline.dev', '-n', ns]), 'yes');
    assert.equal(await can(['list', 'chaospolicies.chaos.faultline.dev', '-n', 'default']), 'no', 'no other namespace');
    assert.equal(await can(['update', 'chaospolicies.chaos.faultline.dev', '-n', ns]), 'no', 'read-only');
    assert.equal(await can(['list', 'pods', '-n', ns]), 'no', 'policies only');

    const px = await suite.startSidecar(stored);
    child = px;
    // The listeners are capture's two, as the plan says.
    const stats = await px.admin<{ listeners: Array<{ listenPort: number }> }>('/stats');
    assert.deepEqual(stats.listeners.map((l) => l.listenPort).sort(), [px.ports.outbound, px.ports.inbound].sort());
    // The app, in the pod, on the ports it declares.
    app = await startHttpApp((s) => px.listen(s, HTTP_PORT));
    echo = await startTcpApp('echo', 0, (s) => px.listen(s, TCP_PORT));
    httpListen = px.endpoint(HTTP_PORT);
    tcpListen = px.endpoint(TCP_PORT);
  });

  after(async function () {
    this.timeout(30_000);
    await suite.tearDown();
    await Promise.all([app?.close(), echo?.close()]);
  });

  it('passes traffic through untouched while no policy exists, and is ready', async () => {
    const ready = await child!.health();
    assert.equal(ready.status, 200);
    assert.ok(await passedThrough());
    assert.equal((await echoRoundTrip(tcpListen, 'hello')).data, 'hello');
    const plan = await child!.admin<LiveFaultPlan>('/plan');
    assert.deepEqual([plan.http, plan.tcp], [[], []]);
    // The watch is up (a list succeeded with the SA token), not merely failing open. Ready comes
    // before that (listeners bound: traffic passes meanwhile), so the log line may follow it.
    await waitFor('the policy watch', () => child!.stdout.some((l) => /faultline-proxy ready/.test(l) && /"source":"kubernetes"/.test(l)), 10_000)
      .catch(() => assert.fail(child!.stdout.join('\n')));
  });

  it('applies an abort policy within 1 s of kubectl apply, pauses and resumes it, and drops it on delete', async () => {
    const abort = policy('abort-all', { http: [{ abort: { status: 503, percent: 100 } }] });
    await measuredChange('apply (http abort 100%) → first 503', () => apply(abort), aborted, async () => {
      await deletePolicy('abort-all');
      await timeToEffect('reset', performance.now(), passedThrough);
    });

    // While active: ready, and the admin API names the policy.
    assert.equal((await child!.health()).status, 200);
    const plan = await child!.admin<LiveFaultPlan>('/plan');
    assert.deepEqual(plan.http.map((f) => f.chaosId), [`${ns}/abort-all`]);
    const stored = await waitForPolicy(cp(), ns, 'abort-all', 'targets', (p) => (p.status?.targets ?? []).includes(POD_NAME));
    assert.deepEqual(stored.status?.targets, [POD_NAME]);

    const pause = (paused: boolean) => () => kubectlAsAlice(['patch', 'chaospolicy', 'abort-all', '--type=merge', '-p', JSON.stringify({ spec: { paused } })]);
    await measuredChange('pause (spec.paused=true) → pass-through', pause(true), passedThrough, async () => {
      await pause(false)();
      await timeToEffect('reset', performance.now(), aborted);
    });
    await measuredChange('unpause → faults back', pause(false), aborted, async () => {
      await pause(true)();
      await timeToEffect('reset', performance.now(), passedThrough);
    });

    await measuredChange('delete → pass-through', () => deletePolicy('abort-all'), passedThrough, async () => {
      await apply(abort);
      await timeToEffect('reset', performance.now(), aborted);
    });
    assert.deepEqual((await child!.admin<LiveFaultPlan>('/plan')).http, []);
  });

  it('applies a delay policy within 1 s and delays each request by its fixed delay', async () => {
    const delay = policy('delay-all', { http: [{ delay: { fixed: `${DELAY_MS}ms`, percent: 100 } }] });
    const delayed = async (): Promise<boolean> => {
      const r = await request(httpListen, '/api');
      return r.status === 200 && r.headers['x-faultline-fault'] === `delay=${DELAY_MS}ms`;
    };
    // The first delayed response arrives DELAY_MS after its request met the fault: count from there.
    const since = await apply(delay);
    const ms = (await timeToEffect('apply (http delay)', since, delayed)) - DELAY_MS;
    note(`apply (http delay ${DELAY_MS} ms) → first delayed request: ${ms.toFixed(0)} ms after kubectl returned`);
    assert.ok(ms <= BOUND_MS, `delay took effect ${ms.toFixed(0)} ms after apply`);

    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await request(httpListen, '/api');
      assert.equal(r.body, 'ok GET /api');
      times.push(r.ms);
    }
    note(`http delay ${DELAY_MS} ms: request times ${times.map((t) => t.toFixed(0)).join(', ')} ms`);
    assert.ok(Math.min(...times) >= DELAY_MS - 2, `fastest ${Math.min(...times).toFixed(1)} ms`);
    assert.ok(median(times) < DELAY_MS + 150, `median ${median(times).toFixed(1)} ms`);

    const gone = await timeToEffect('delete (http delay)', await deletePolicy('delay-all'), passedThrough);
    note(`delete (http delay) → pass-through: ${gone.toFixed(0)} ms`);
    assert.ok(gone <= BOUND_MS);
  });

  it('adds a tcp latency toxic to a raw TCP echo through the real Toxiproxy', async () => {
    const baseline: number[] = [];
    for (let i = 0; i < 5; i++) baseline.push((await echoRoundTrip(tcpListen)).ms);
    const lagging = policy('tcp-lag', { tcp: [{ port: echo!.port, toxics: [{ type: 'latency', latency: `${TOXIC_LATENCY_MS}ms` }] }] });
    const since = await apply(lagging);
    // Time to the first slow round trip, less the toxic itself.
    const ms = (await timeToEffect('apply (tcp latency)', since, async () => (await echoRoundTrip(tcpListen)).ms >= TOXIC_LATENCY_MS)) - TOXIC_LATENCY_MS;
    note(`apply (tcp latency ${TOXIC_LATENCY_MS} ms) → first slow round trip: ${ms.toFixed(0)} ms after kubectl returned`);
    assert.ok(ms <= BOUND_MS, `tcp toxic took effect ${ms.toFixed(0)} ms after apply`);

    const slow: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await echoRoundTrip(tcpListen, `ping-${i}`);
      assert.equal(r.data, `ping-${i}`);
      slow.push(r.ms);
    }
    const added = median(slow) - median(baseline);
    note(`tcp latency ${TOXIC_LATENCY_MS} ms: echo round trip ${median(baseline).toFixed(1)} → ${median(slow).toFixed(1)} ms (added ${added.toFixed(1)} ms)`);
    assert.ok(added >= TOXIC_LATENCY_MS - 5 && added <= TOXIC_LATENCY_MS + 100, `added ${added.toFixed(1)} ms`);
    const stats = await child!.admin<{ toxiproxy: { up: boolean }; connections: Record<string, number> }>('/stats');
    assert.equal(stats.toxiproxy.up, true);
    assert.ok((stats.connections.toxiproxy ?? 0) >= 5, JSON.stringify(stats.connections));
    const plan = await child!.admin<LiveFaultPlan>('/plan');
    assert.deepEqual(plan.tcp.map((f) => [f.chaosId, f.port]), [[`${ns}/tcp-lag`, echo!.port]]);

    const gone = await timeToEffect('delete (tcp latency)', await deletePolicy('tcp-lag'), async () => (await echoRoundTrip(tcpListen)).ms < TOXIC_LATENCY_MS / 2);
    note(`delete (tcp latency) → fast round trip: ${gone.toFixed(0)} ms`);
    assert.ok(gone <= BOUND_MS);
  });

  // Last: it freezes the shared API server (resumed in finally).
  it('ends a fault at its expiresAt while the API server is frozen', async () => {
    const DURATION_S = 5;
    const short = policy('short-abort', { duration: `${DURATION_S}s`, http: [{ abort: { status: 503, percent: 100 } }] });
    await timeToEffect('apply (short abort)', await apply(short), aborted);
    const planned = (await child!.admin<LiveFaultPlan>('/plan')).http.find((f) => f.chaosId === `${ns}/short-abort`);
    assert.ok(planned, 'the short policy is in the sidecar plan');
    const { expiresAt } = planned;
    const stored = await waitForPolicy(cp(), ns, 'short-abort', 'startedAt', (p) => p.status?.startedAt !== undefined);
    assert.equal(expiresAt, Date.parse(stored.status!.startedAt!) + DURATION_S * 1000, 'expiresAt = status.startedAt + duration');
    const left = expiresAt - Date.now();
    assert.ok(left > 500, `only ${left} ms of the fault left before freezing the API server`);

    let lastFault = 0;
    let restored = 0;
    suspendApiserver(cp());
    try {
      // Proof the API server is really unreachable: a request to it gets no answer.
      const probe = await Promise.race([
        fetch(`${cp().apiserverUrl}/readyz`).then(() => 'answered', () => 'answered'),
        sleep(300).then(() => 'silent'),
      ]);
      assert.equal(probe, 'silent', 'the frozen API server does not answer');
      for (;;) {
        const sent = Date.now();
        const r = await request(httpListen, '/api');
        const now = Date.now();
        if (r.status === 503) lastFault = sent;
        else if (r.status === 200 && r.headers['x-faultline-fault'] === undefined) {
          restored = now;
          break;
        } else assert.fail(`unexpected response ${r.status} ${r.body}`);
        if (now > expiresAt + 5_000) break;
        await sleep(POLL_MS);
      }
    } finally {
      resumeApiserver(cp());
    }
    assert.ok(restored > 0, `the fault still applied 5 s after expiresAt (API server frozen)`);
    note(`expiry with the API server frozen: last 503 for a request sent at expiresAt${fmt(lastFault - expiresAt)} ms, first pass-through answered at expiresAt${fmt(restored - expiresAt)} ms`);
    assert.ok(lastFault > 0, 'the fault was seen while the API server was frozen');
    // Not early (a pass-through answered before expiresAt would be a fault cut short) and not late.
    assert.ok(restored >= expiresAt && restored <= expiresAt + 1_000, `pass-through from expiresAt${fmt(restored - expiresAt)} ms`);
    assert.ok(lastFault <= expiresAt + 1_000, `a request sent at expiresAt${fmt(lastFault - expiresAt)} ms was still faulted`);

    // Back to normal for whoever runs next: the API server answers and the watch resumes.
    const deadline = Date.now() + 30_000;
    while ((await cp().kubectl('admin', ['get', '--raw', '/readyz'])).code !== 0) {
      if (Date.now() > deadline) throw new Error('kube-apiserver not ready 30 s after SIGCONT');
      await sleep(200);
    }
    await deletePolicy('short-abort');
  });
});

function fmt(ms: number): string {
  return ms >= 0 ? `+${ms}` : `${ms}`;
}

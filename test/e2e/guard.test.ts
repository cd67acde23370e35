// The steady-state guard end to end on the real kube-apiserver: two injected
// pods of one policy, each with a real `faultline sidecar` holding only a pod's
// service-account RBAC. One pod's workload degrades; its proxy aborts locally,
// records the abort notice, the other pod's proxy drops the policy within 1 s,
// and the reconciler marks the policy Aborted until a person changes it. Then
// the same with the API server frozen: the tripping pod still stops itself.
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChaosPolicy } from '../../policies/types.ts';
import { API_GROUP_VERSION } from '../../policies/wellknown.ts';
import { getJson, kubectlOk, useControlPlane } from '../support/e2e-cluster.ts';
import { resumeApiserver, SidecarSuite, suspendApiserver, waitForPolicy, waitForSidecarBinding } from '../support/e2e-sidecar-cluster.ts';

const WINDOW_S = 2;
const RATE_MS = 40;

/** An app whose health the test sets. */
async function startApp(listen: (s: net.Server) => Promise<number>): Promise<{ port: number; status: number; close(): Promise<void> }> {
  const state = { status: 200 };
  const server = http.createServer((_req, res) => {
    res.writeHead(state.status, { 'content-type': 'text/plain' });
    res.end('x');
  });
  const port = await listen(server);
  return Object.assign(state, {
    port,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  });
}

function get(host: string, port: number): Promise<{ status: number; faulted: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: '/', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, faulted: res.headers['x-faultline-fault'] !== undefined }));
    });
    req.on('error', reject);
    req.setTimeout(5_000, () => req.destroy(new Error('timeout')));
  });
}

describe('e2e: steady-state guard (abortWhen) across pods', function () {
  this.timeout(180_000);
  const cp = useControlPlane();
  const suite = new SidecarSuite(cp, 'guard');
  const LABELS = { app: 'web-guard' };
  let ns = '';
  const apps: Array<Awaited<ReturnType<typeof startApp>>> = [];
  const sidecars = suite.sidecars;
  /** Each pod's app port, reached at the pod's IP: through its proxy. */
  const front: Array<{ host: string; port: number }> = [];
  const note = (line: string): void => suite.note(line);

  let generation = 0;
  async function applyPolicy(name: string): Promise<ChaosPolicy> {
    const p = SidecarSuite.policy(LABELS, name, {
      http: [{ delay: { fixed: '5ms', percent: 100 } }],
      abortWhen: { errorRate: { percent: 50, window: `${WINDOW_S}s`, minRequests: 10 } },
    });
    const r = await suite.apply(p, `${name}-${++generation}`);
    assert.equal(r.code, 0, r.stderr);
    return waitForPolicy(cp(), ns, name, 'both pods targeted', (x) => (x.status?.targets ?? []).length === 2);
  }
  async function untilFaulted(i: number, want: boolean, giveUpMs = 10_000): Promise<number> {
    const t0 = Date.now();
    for (;;) {
      if ((await get(front[i]!.host, front[i]!.port)).faulted === want) return Date.now();
      if (Date.now() - t0 > giveUpMs) throw new Error(`pod ${i + 1}: faulted=${want} not seen in ${giveUpMs} ms\n${sidecars[i]?.stdout.slice(-15).join('\n')}`);
      await sleep(20);
    }
  }
  /** Traffic on pod 1 until its faults are off; returns when that happened. */
  async function degradeUntilAborted(giveUpMs: number): Promise<{ degradedAt: number; offAt: number }> {
    apps[0]!.status = 503;
    const degradedAt = Date.now();
    for (;;) {
      const r = await get(front[0]!.host, front[0]!.port);
      if (!r.faulted) return { degradedAt, offAt: Date.now() };
      if (Date.now() - degradedAt > giveUpMs) throw new Error(`pod 1 not aborted ${giveUpMs} ms after degrading\n${sidecars[0]?.stdout.slice(-15).join('\n')}`);
      await sleep(RATE_MS);
    }
  }
  const breachTime = (i: number): number => {
    const line = sidecars[i]!.stdout.filter((l) => l.includes('steady-state guard breached')).at(-1);
    assert.ok(line, `pod ${i + 1} logged the breach`);
    return Date.parse((JSON.parse(line) as { time: string }).time);
  };

  before(async function () {
    this.timeout(120_000);
    await suite.setUp({ kinds: ['http.delay'], requireAbortWhen: true, limits: { maxDuration: '1h', maxAbortWindow: '1m' } });
    ns = suite.ns;
    await waitForSidecarBinding(cp(), ns);
    for (const i of [0, 1]) {
      const name = `web-guard-${i + 1}`;
      const px = await suite.startSidecar(await suite.createPod(name, LABELS, [8080]));
      const app = await startApp((s) => px.listen(s, 8080));
      apps.push(app);
      front.push(px.endpoint(app.port));
    }
  });

  after(async function () {
    this.timeout(30_000);
    await suite.tearDown();
    for (const a of apps) await a.close();
  });

  it('the tenant requires a guard: a policy without abortWhen is denied', async () => {
    const r = await suite.apply({ apiVersion: API_GROUP_VERSION, kind: 'ChaosPolicy', metadata: { name: 'unguarded' }, spec: { duration: '1m', http: [{ delay: { fixed: '5ms' } }] } });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /spec\.abortWhen is required by the tenant/);
  });

  it('one pod degrades: it aborts within window + 1 s, the other pod follows within 1 s, the policy is Aborted until changed', async () => {
    await applyPolicy('guarded');
    await Promise.all([untilFaulted(0, true), untilFaulted(1, true)]);
    // A healthy window first: the guard holds.
    const healthyUntil = Date.now() + WINDOW_S * 1000;
    while (Date.now() < healthyUntil) {
      assert.ok((await get(front[0]!.host, front[0]!.port)).faulted, 'healthy traffic is faulted and not aborted');
      await sleep(RATE_MS);
    }
    const { degradedAt, offAt } = await degradeUntilAborted(WINDOW_S * 1000 + 3_000);
    note(`pod 1 (degraded): faults off ${offAt - degradedAt} ms after the workload degraded (bound ${WINDOW_S * 1000 + 1000})`);
    assert.ok(offAt - degradedAt <= WINDOW_S * 1000 + 1_000);
    const breach = breachTime(0);
    const otherOff = await untilFaulted(1, false, 5_000);
    note(`pod 2 (healthy): faults off ${otherOff - breach} ms after pod 1's proxy saw the breach`);
    assert.ok(otherOff - breach <= 1_000, `pod 2 followed after ${otherOff - breach} ms`);

    const aborted = await waitForPolicy(cp(), ns, 'guarded', 'Aborted', (p) => p.status?.conditions?.some((c) => c.type === 'Aborted' && c.status === 'True') ?? false);
    const cond = aborted.status!.conditions!.find((c) => c.type === 'Aborted')!;
    assert.equal(cond.reason, 'SteadyStateBreached');
    assert.match(cond.message!, /error rate \d+(\.\d)?% over 2s \(\d+ responses\) exceeded 50%, seen by pod web-guard-1/);
    assert.equal(aborted.status!.abort!.generation, aborted.metadata.generation);
    assert.ok(aborted.status!.abort!.observed > 50);
    assert.deepEqual(aborted.status!.targets ?? [], []);
    const events = await getJson<{ items: Array<{ reason: string; type: string; source?: { component?: string } }> }>(cp(), 'admin', ['events', '-n', ns, '--field-selector', 'involvedObject.name=guarded']);
    assert.ok(events.items.some((e) => e.reason === 'SteadyStateBreached' && e.source?.component === 'faultline-proxy'), 'the proxy recorded the notice');
    assert.ok(events.items.some((e) => e.reason === 'Aborted' && e.type === 'Warning'), 'the reconciler emitted Aborted');

    // Stays off after the workload recovers.
    apps[0]!.status = 200;
    await sleep(1_000);
    for (const i of [0, 1]) assert.equal((await get(front[i]!.host, front[i]!.port)).faulted, false, `pod ${i + 1} stays off`);

    // A person resumes it: any spec change is a new generation (here: pause, then unpause).
    for (const paused of [true, false]) await kubectlOk(cp(), 'alice', ['patch', 'chaospolicy', 'guarded', '-n', ns, '--type=merge', '-p', JSON.stringify({ spec: { paused } })]);
    await waitForPolicy(cp(), ns, 'guarded', 'resumed', (p) => (p.status?.targets ?? []).length === 2);
    await Promise.all([untilFaulted(0, true), untilFaulted(1, true)]);
  });

  // Last: it freezes the shared API server (resumed in finally).
  it('with the API server frozen, the degraded pod still aborts itself within window + 1 s', async () => {
    apps[0]!.status = 200;
    await untilFaulted(0, true);
    const healthyUntil = Date.now() + WINDOW_S * 1000;
    while (Date.now() < healthyUntil) await get(front[0]!.host, front[0]!.port).then(() => sleep(RATE_MS));
    let result: { degradedAt: number; offAt: number };
    suspendApiserver(cp());
    try {
      const probe = await Promise.race([fetch(`${cp().apiserverUrl}/readyz`).then(() => 'answered', () => 'answered'), sleep(300).then(() => 'silent')]);
      assert.equal(probe, 'silent', 'the frozen API server does not answer');
      result = await degradeUntilAborted(WINDOW_S * 1000 + 3_000);
    } finally {
      resumeApiserver(cp());
    }
    note(`API server frozen: pod 1 faults off ${result.offAt - result.degradedAt} ms after the workload degraded`);
    assert.ok(result.offAt - result.degradedAt <= WINDOW_S * 1000 + 1_000);
    apps[0]!.status = 200;
    // Once the API server is back, the notice is recorded (retried) and the reconciler catches up.
    await waitForPolicy(cp(), ns, 'guarded', 'Aborted after the freeze', (p) => p.status?.conditions?.some((c) => c.type === 'Aborted' && c.status === 'True') ?? false, 60_000);
  });
});

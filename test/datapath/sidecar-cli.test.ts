// `faultline sidecar` end to end, as a pod runs it (PodProxy: the webhook's
// plan, `faultline init`'s capture, the proxy UID, a plan file): a real
// toxiproxy-server child, the admin / metrics / health endpoints, the init
// hand-off, the faketime file, clean shutdown and bad input.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PLAN_ENV, PROXY_CONTAINER_NAME } from '../../contract/pod-layout.ts';
import { appPod, injectedPod } from '../support/netns-fixtures.ts';
import { PodProxy, type Endpoint, type PodProxyOptions } from '../support/netns-proxy.ts';
import { httpFault, tcpFault } from '../support/sidecar-plans.ts';
import { cliPath, echoRoundTrip, repoRoot, request, startHttpApp, startTcpApp, waitFor } from '../support/sidecar-harness.ts';

describe('faultline sidecar (child process)', function () {
  this.timeout(60_000);
  let app: Awaited<ReturnType<typeof startHttpApp>>;
  let echo: Awaited<ReturnType<typeof startTcpApp>>;
  let px: PodProxy | undefined;
  let httpListen: Endpoint;
  let tcpListen: Endpoint;

  /** A pod running the proxy with `o`, serving the HTTP app and the echo app. */
  async function startPod(o: PodProxyOptions = {}): Promise<PodProxy> {
    px = await PodProxy.start(o);
    const inPod = (s: net.Server) => px!.listen(s);
    app = await startHttpApp(inPod);
    echo = await startTcpApp('echo', 0, inPod);
    httpListen = px.endpoint(app.port);
    tcpListen = px.endpoint(echo.port);
    return px;
  }

  afterEach(async () => {
    await px?.close();
    px = undefined;
    await Promise.all([app?.close(), echo?.close()]);
  });

  it('proxies, applies a rewritten plan live, reports it, and shuts down cleanly', async () => {
    const px = await startPod({ toxiproxy: true });
    assert.equal((await request(httpListen, '/')).body, 'ok GET /');

    const t0 = Date.now();
    await px.write({
      http: [httpFault({ name: 'shop/abort', match: { path: { prefix: '/api' } }, abort: { status: 503, percent: 100 } })],
      tcp: [tcpFault(echo.port, [{ name: 'shop.lag', type: 'latency', attributes: { latency: 150 } }])],
    });
    await waitFor('the HTTP fault', async () => (await request(httpListen, '/api/x')).status === 503, 1_000, 5);
    assert.ok(Date.now() - t0 < 1_000);
    const r = await request(httpListen, '/api/x');
    assert.equal(r.headers['x-faultline-fault'], 'abort=503');
    assert.equal((await request(httpListen, '/web')).status, 200);
    await waitFor('the TCP fault', async () => (await echoRoundTrip(tcpListen)).ms >= 150, 3_000, 20);

    const plan = await px.admin<{ http: unknown[]; tcp: unknown[] }>('/plan');
    assert.equal(plan.http.length, 1);
    assert.equal(plan.tcp.length, 1);
    const faults = await px.admin<Array<{ kind: string; chaosId: string }>>('/faults');
    assert.deepEqual(faults.map((f) => f.kind).sort(), ['http', 'tcp']);
    const stats = await px.admin<{ connections: Record<string, number>; faults: Record<string, number>; toxiproxy: { up: boolean; pid: number } }>('/stats');
    assert.ok(stats.connections.http! >= 1 && stats.connections.toxiproxy! >= 1 && stats.connections.raw! >= 1);
    assert.ok(stats.faults['http.abort']! >= 2);
    assert.equal(stats.toxiproxy.up, true);

    const metrics = await px.metrics();
    assert.match(metrics, /faultline_proxy_requests_total\{direction="inbound"\} [1-9]/);
    assert.match(metrics, /faultline_proxy_connections_total\{path="toxiproxy"\} [1-9]/);
    assert.match(metrics, /faultline_faults_injected_total\{kind="http.abort"\} [1-9]/);
    assert.match(metrics, /faultline_toxiproxy_restarts_total 0/);
    assert.equal((await px.adminGet('/nope')).status, 404);

    const started = px.find('fault started');
    assert.deepEqual(started.map((l) => l.fault).sort(), ['http.abort', 'tcp.latency']);
    for (const l of started) assert.equal(l.policy, 'shop/test');

    // SIGTERM: the proxy exits 0 and takes its Toxiproxy child with it.
    const toxiproxyPid = stats.toxiproxy.pid;
    assert.equal(await px.stopProxy(), 0);
    assert.throws(() => process.kill(toxiproxyPid, 0), /ESRCH/);
  });

  it('fails open and reports not-ready when Toxiproxy cannot run', async () => {
    const px = await startPod(); // its --toxiproxy-bin names no file
    await px.write({ tcp: [tcpFault(echo.port, [{ type: 'latency', attributes: { latency: 300 } }])] });
    await waitFor('readiness to drop', async () => (await px.health()).status === 503, 2_000);
    const body = (await (await px.health()).json()) as { reason: string };
    assert.match(body.reason, /toxiproxy/);
    const r = await echoRoundTrip(tcpListen);
    assert.ok(r.ms < 300, `traffic must flow unfaulted, took ${r.ms} ms`);
  });

  it('applies the init hand-off delay to inbound connections and requests until it expires', async () => {
    const expiresAt = Date.now() + 8_000;
    const px = await startPod({ handoff: { networkDelay: { latencyMs: 150, jitterMs: 0, correlation: 0, chaosId: 'shop/net', expiresAt } } });
    // An HTTP fault on the app port puts it on the HTTP path; the echo port stays raw.
    await px.apply({ http: [httpFault({ name: 'h', match: { port: app.port, path: { exact: '/never' } }, abort: { status: 500, percent: 100 } })] });
    const raw = await echoRoundTrip(tcpListen);
    assert.equal(raw.data, 'ping');
    assert.ok(raw.ms >= 150 && raw.ms < 150 + 200, `raw connection: ${raw.ms} ms`);
    const req = await request(httpListen, '/');
    assert.ok(req.ms >= 150 && req.ms < 150 + 200, `HTTP request: ${req.ms} ms`);
    const faults = await px.admin<Array<{ kind: string }>>('/faults');
    assert.ok(faults.some((f) => f.kind === 'network.delay'));
  });

  it('writes the time offset to faketime.rc and resets it when the fault ends', async () => {
    const px = await startPod();
    const rc = px.pod.faketimeFile;
    // Where init puts it when the pod starts with a time fault, writable by the proxy UID.
    await mkdir(path.dirname(rc), { recursive: true });
    await chmod(path.dirname(rc), 0o777);
    await writeFile(rc, '+0s\n');
    await px.write({ time: { chaosId: 'shop/clock', expiresAt: Date.now() + 1_500, offsetMs: -2 * 3600_000, containers: ['app'] } });
    await waitFor('the offset to be written', async () => (await readFile(rc, 'utf8')) === '-7200s\n', 2_000);
    // Expiry alone ends it.
    await waitFor('the offset to be reset at expiry', async () => (await readFile(rc, 'utf8')) === '+0s\n', 3_000);
  });

  it('starts again, after a crash, from the live plan as it is now, not as the pod started', async () => {
    const px = await startPod();
    await px.apply({ http: [httpFault({ name: 'now', abort: { status: 418, percent: 100 } })] });
    await px.pod.crash(PROXY_CONTAINER_NAME);
    await px.pod.restartProxy();
    // Ready comes before the plan source's first read: the fault follows within moments, from the file as last written.
    await waitFor('the restarted proxy to apply the plan', async () => (await request(httpListen, '/')).status === 418, 2_000, 20);
    assert.deepEqual((await px.currentPlan()).http.map((f) => f.name), ['now']);
  });

  it('checks its C heap on the --malloc-release-interval, and never with 0', async () => {
    type Stats = { mallocRelease?: { checks: number; releases: number; releasedBytes: number; releaseMs: number; freeBytes: number } };
    const px = await startPod({ proxyArgs: ['--malloc-release-interval', '1'] });
    await waitFor('two checks', async () => ((await px.admin<Stats>('/stats')).mallocRelease?.checks ?? 0) >= 2, 5_000, 100);
    const { mallocRelease } = await px.admin<Stats>('/stats');
    // Whether a check trims depends on what this run left free; that one ran, on glibc's numbers, does not.
    assert.ok(Number.isInteger(mallocRelease!.freeBytes) && mallocRelease!.freeBytes >= 0, JSON.stringify(mallocRelease));
    await px.close();
    await Promise.all([app.close(), echo.close()]);
    const off = await startPod({ proxyArgs: ['--malloc-release-interval', '0'] });
    assert.equal((await request(httpListen, '/')).body, 'ok GET /');
    assert.equal((await off.admin<Stats>('/stats')).mallocRelease, undefined);
  });

  it('rejects bad input with a clear message', async () => {
    const node = path.join(repoRoot, 'node_modules', '.bin', 'node');
    const cli = cliPath;
    const env = { ...process.env, FAULTLINE_PLAN: '' };
    const noWiring = spawnSync(node, [cli, 'sidecar'], { env, encoding: 'utf8' });
    assert.equal(noWiring.status, 2);
    assert.match(noWiring.stderr, /no wiring: set FAULTLINE_PLAN or pass --wiring-file/);
    // A good plan (the webhook's), two policy sources.
    const dir = await mkdtemp(path.join(tmpdir(), 'faultline-sidecar-'));
    try {
      const proxy = injectedPod(appPod({ ports: [] })).spec!.initContainers!.find((c) => c.name === PROXY_CONTAINER_NAME)!;
      const planFile = path.join(dir, 'plan.json');
      await writeFile(planFile, proxy.env!.find((e) => e.name === PLAN_ENV)!.value!);
      const both = spawnSync(node, [cli, 'sidecar', '--wiring-file', planFile, '--plan-file', 'a', '--kubeconfig', 'b'], { env: { ...env, POD_IP: '10.0.0.5' }, encoding: 'utf8' });
      assert.equal(both.status, 2);
      assert.match(both.stderr, /pick one/);
      for (const [value, message] of [['-1', /--malloc-release-interval must be 0 \(never\) or more seconds, got -1/], ['10s', /--malloc-release-interval must be an integer, got '10s'/]] as const) {
        const bad = spawnSync(node, [cli, 'sidecar', '--wiring-file', planFile, `--malloc-release-interval=${value}`], { env: { ...env, POD_IP: '10.0.0.5' }, encoding: 'utf8' });
        assert.equal(bad.status, 2, bad.stderr);
        assert.match(bad.stderr, message);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

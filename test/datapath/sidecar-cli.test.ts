// `faultline sidecar` as a child process, end to end: wiring and plan files,
// a real toxiproxy-server child, the admin / metrics / health endpoints, the
// init hand-off, the faketime file, clean shutdown and bad input.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { freePorts } from '../../common/ports.ts';
import { httpFault, tcpFault } from '../support/sidecar-plans.ts';
import { cliPath, echoRoundTrip, PlanFile, repoRoot, request, startChild, startHttpApp, startTcpApp, toxiproxyBin, waitFor, type Child } from '../support/sidecar-harness.ts';

describe('faultline sidecar (child process)', function () {
  this.timeout(60_000);
  let app: Awaited<ReturnType<typeof startHttpApp>>;
  let echo: Awaited<ReturnType<typeof startTcpApp>>;
  let files: PlanFile;
  let child: Child | undefined;
  let httpListen: number;
  let tcpListen: number;

  const wiringFile = (): string => path.join(files.dir, 'wiring.json');

  before(async () => {
    app = await startHttpApp();
    echo = await startTcpApp('echo');
    files = await PlanFile.create();
    [httpListen, tcpListen] = (await freePorts(2)) as [number, number];
    await writeFile(
      wiringFile(),
      JSON.stringify({
        proxyUid: 1337,
        inbound: [
          { port: app.port, listenPort: httpListen },
          { port: echo.port, listenPort: tcpListen },
        ],
        outbound: [],
        excludeInboundPorts: [],
      }),
    );
  });
  afterEach(async () => {
    await child?.stop();
    child = undefined;
  });
  after(async () => {
    await Promise.all([app?.close(), echo?.close()]);
    await files?.remove();
  });

  it('proxies, applies a rewritten plan live, reports it, and shuts down cleanly', async () => {
    await files.write({});
    child = await startChild(['--wiring-file', wiringFile(), '--plan-file', files.file, '--toxiproxy-bin', await toxiproxyBin(), '--fault-header']);
    assert.equal((await request(httpListen, '/')).body, 'ok GET /');

    const t0 = Date.now();
    await files.write({
      http: [httpFault({ name: 'shop/abort', match: { path: { prefix: '/api' } }, abort: { status: 503, percent: 100 } })],
      tcp: [tcpFault(echo.port, [{ name: 'shop.lag', type: 'latency', attributes: { latency: 150 } }])],
    });
    await waitFor('the HTTP fault', async () => (await request(httpListen, '/api/x')).status === 503, 1_000, 5);
    assert.ok(Date.now() - t0 < 1_000);
    const r = await request(httpListen, '/api/x');
    assert.equal(r.headers['x-faultline-fault'], 'abort=503');
    assert.equal((await request(httpListen, '/web')).status, 200);
    await waitFor('the TCP fault', async () => (await echoRoundTrip(tcpListen)).ms >= 150, 3_000, 20);

    const plan = await child.admin<{ http: unknown[]; tcp: unknown[] }>('/plan');
    assert.equal(plan.http.length, 1);
    assert.equal(plan.tcp.length, 1);
    const faults = await child.admin<Array<{ kind: string; chaosId: string }>>('/faults');
    assert.deepEqual(faults.map((f) => f.kind).sort(), ['http', 'tcp']);
    const stats = await child.admin<{ connections: Record<string, number>; faults: Record<string, number>; toxiproxy: { up: boolean; pid: number } }>('/stats');
    assert.ok(stats.connections.http! >= 1 && stats.connections.toxiproxy! >= 1 && stats.connections.raw! >= 1);
    assert.ok(stats.faults['http.abort']! >= 2);
    assert.equal(stats.toxiproxy.up, true);

    const metrics = await (await fetch(`http://127.0.0.1:${child.ports.metrics}/metrics`)).text();
    assert.match(metrics, /faultline_proxy_requests_total\{direction="inbound"\} [1-9]/);
    assert.match(metrics, /faultline_proxy_connections_total\{path="toxiproxy"\} [1-9]/);
    assert.match(metrics, /faultline_faults_injected_total\{kind="http.abort"\} [1-9]/);
    assert.match(metrics, /faultline_toxiproxy_restarts_total 0/);
    assert.equal((await fetch(`http://127.0.0.1:${child.ports.admin}/nope`)).status, 404);

    const started = child.stdout.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'fault started');
    assert.deepEqual(started.map((l) => l.fault).sort(), ['http.abort', 'tcp.latency']);
    for (const l of started) assert.equal(l.policy, 'shop/test');

    // SIGTERM: the proxy exits 0 and takes its Toxiproxy child with it.
    const toxiproxyPid = stats.toxiproxy.pid;
    await child.stop();
    assert.equal(child.proc.exitCode, 0);
    assert.throws(() => process.kill(toxiproxyPid, 0), /ESRCH/);
  });

  it('fails open and reports not-ready when Toxiproxy cannot run', async () => {
    await files.write({});
    child = await startChild(['--wiring-file', wiringFile(), '--plan-file', files.file, '--toxiproxy-bin', path.join(files.dir, 'no-such-toxiproxy')]);
    await files.write({ tcp: [tcpFault(echo.port, [{ type: 'latency', attributes: { latency: 300 } }])] });
    await waitFor('readiness to drop', async () => (await fetch(`http://127.0.0.1:${child!.ports.health}/healthz/ready`)).status === 503, 2_000);
    const body = (await (await fetch(`http://127.0.0.1:${child.ports.health}/healthz/ready`)).json()) as { reason: string };
    assert.match(body.reason, /toxiproxy/);
    const r = await echoRoundTrip(tcpListen);
    assert.ok(r.ms < 300, `traffic must flow unfaulted, took ${r.ms} ms`);
  });

  it('applies the init hand-off delay to inbound connections and requests until it expires', async () => {
    const handoff = path.join(files.dir, 'handoff.json');
    const expiresAt = Date.now() + 8_000;
    await writeFile(handoff, JSON.stringify({ networkDelay: { latencyMs: 150, jitterMs: 0, correlation: 0, chaosId: 'shop/net', expiresAt } }));
    // An HTTP fault on the app port puts it on the HTTP path; the echo port stays raw.
    await files.write({ http: [httpFault({ name: 'h', match: { port: app.port, path: { exact: '/never' } }, abort: { status: 500, percent: 100 } })] });
    child = await startChild(['--wiring-file', wiringFile(), '--plan-file', files.file, '--handoff-file', handoff]);
    const raw = await echoRoundTrip(tcpListen);
    assert.equal(raw.data, 'ping');
    assert.ok(raw.ms >= 150 && raw.ms < 150 + 200, `raw connection: ${raw.ms} ms`);
    const req = await request(httpListen, '/');
    assert.ok(req.ms >= 150 && req.ms < 150 + 200, `HTTP request: ${req.ms} ms`);
    const faults = await child.admin<Array<{ kind: string }>>('/faults');
    assert.ok(faults.some((f) => f.kind === 'network.delay'));
  });

  it('writes the time offset to faketime.rc and resets it when the fault ends', async () => {
    const rc = path.join(files.dir, 'faketime.rc');
    await writeFile(rc, '+0s\n');
    await files.write({});
    child = await startChild(['--wiring-file', wiringFile(), '--plan-file', files.file, '--faketime-file', rc]);
    await files.write({ time: { chaosId: 'shop/clock', expiresAt: Date.now() + 1_500, offsetMs: -2 * 3600_000, containers: ['app'] } });
    await waitFor('the offset to be written', async () => (await readFile(rc, 'utf8')) === '-7200s\n', 2_000);
    // Expiry alone ends it.
    await waitFor('the offset to be reset at expiry', async () => (await readFile(rc, 'utf8')) === '+0s\n', 3_000);
  });

  it('rejects bad input with a clear message', () => {
    const node = path.join(repoRoot, 'node_modules', '.bin', 'node');
    const cli = cliPath;
    const env = { ...process.env, FAULTLINE_PLAN: '' };
    const noWiring = spawnSync(node, [cli, 'sidecar'], { env, encoding: 'utf8' });
    assert.equal(noWiring.status, 2);
    assert.match(noWiring.stderr, /no wiring: set FAULTLINE_PLAN or pass --wiring-file/);
    const both = spawnSync(node, [cli, 'sidecar', '--wiring-file', wiringFile(), '--plan-file', 'a', '--kubeconfig', 'b'], { env, encoding: 'utf8' });
    assert.equal(both.status, 2);
    assert.match(both.stderr, /pick one/);
  });
});

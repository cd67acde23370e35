// TCP faults through a real toxiproxy-server supervised by a faultline-proxy
// in a pod's network namespace (capture, as in a pod: PodProxy): every toxic's
// effect measured on the wire, reconcile idempotence, expiry and fail-open
// when Toxiproxy dies.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { tcpFault } from '../support/sidecar-plans.ts';
import { PodProxy } from '../support/netns-proxy.ts';
import { echoRoundTrip, sleep, startTcpApp, tcpExchange, waitFor } from '../support/sidecar-harness.ts';

type TcpApp = Awaited<ReturnType<typeof startTcpApp>>;

interface ToxiproxyState {
  [name: string]: { listen: string; toxics: Array<{ name: string; type: string; attributes: Record<string, number> }> };
}

describe('sidecar TCP faults through Toxiproxy', function () {
  this.timeout(60_000);
  let echo: TcpApp;
  let source: TcpApp; // writes 200 kB on connect, then closes
  let px: PodProxy;
  const SOURCE_BYTES = 200_000;

  const proxies = (): Promise<ToxiproxyState> => px.toxiproxy<ToxiproxyState>('/proxies');
  const at = (app: TcpApp) => px.endpoint(app.port);

  before(async () => {
    px = await PodProxy.start({ toxiproxy: true });
    echo = await startTcpApp('echo', 0, (s) => px.listen(s));
    source = await startTcpApp('source', SOURCE_BYTES, (s) => px.listen(s));
    await waitFor('toxiproxy-server to come up', async () => (await px.stats()).toxiproxy.up, 15_000, 50);
  });
  after(async () => {
    await px?.close();
    await Promise.all([echo?.close(), source?.close()]);
  });
  beforeEach(() => px.apply({}));

  it('latency: adds at least the configured delay, only on the faulted port', async () => {
    await px.apply({ tcp: [tcpFault(echo.port, [{ type: 'latency', attributes: { latency: 200, jitter: 0 } }])] });
    const before = (await px.stats()).connections.toxiproxy ?? 0;
    const r = await echoRoundTrip(at(echo));
    assert.equal(r.data, 'ping');
    assert.ok(r.ms >= 200 && r.ms < 200 + 300, `echo took ${r.ms} ms`);
    assert.equal((await px.stats()).connections.toxiproxy, before + 1);
    const other = await tcpExchange(at(source));
    assert.ok(other.firstByteMs < 100, `unfaulted port took ${other.firstByteMs} ms`);
  });

  it('bandwidth: 100 KB/s within ±10%', async () => {
    await px.apply({ tcp: [tcpFault(source.port, [{ type: 'bandwidth', attributes: { rate: 100 } }])] });
    const r = await tcpExchange(at(source));
    assert.equal(r.data.length, SOURCE_BYTES);
    // Toxiproxy's KB is 1000 bytes (bandwidth.go: Rate * 1000).
    const rate = SOURCE_BYTES / (r.ms / 1000) / 1000;
    assert.ok(rate > 90 && rate < 110, `measured ${rate.toFixed(1)} KB/s over ${r.ms.toFixed(0)} ms`);
  });

  it('reset_peer: the client sees ECONNRESET', async () => {
    await px.apply({ tcp: [tcpFault(echo.port, [{ type: 'reset_peer', attributes: { timeout: 0 } }])] });
    const r = await tcpExchange(at(echo), Buffer.from('hello'));
    assert.equal(r.error?.code, 'ECONNRESET');
    assert.equal(r.data.length, 0);
  });

  it('timeout: no data, then closed after the timeout', async () => {
    await px.apply({ tcp: [tcpFault(echo.port, [{ type: 'timeout', attributes: { timeout: 500 } }])] });
    // The client keeps its side open: only the toxic may close the connection.
    const r = await tcpExchange(at(echo), Buffer.from('anyone there?'), { halfClose: false });
    assert.equal(r.data.length, 0);
    assert.ok(r.ms >= 500 && r.ms < 500 + 500, `closed after ${r.ms} ms`);
  });

  it('slicer: data arrives in many small chunks', async () => {
    const unsliced = await tcpExchange(at(source));
    await px.apply({ tcp: [tcpFault(source.port, [{ type: 'slicer', attributes: { average_size: 64, size_variation: 16, delay: 200 } }])] });
    const r = await tcpExchange(at(source));
    assert.equal(r.data.length, SOURCE_BYTES);
    assert.ok(r.chunks > 200 && r.chunks > unsliced.chunks * 10, `${r.chunks} chunks sliced vs ${unsliced.chunks} unsliced`);
  });

  it('limit_data: the connection closes after exactly N bytes', async () => {
    await px.apply({ tcp: [tcpFault(source.port, [{ type: 'limit_data', attributes: { bytes: 1000 } }])] });
    const r = await tcpExchange(at(source));
    assert.equal(r.data.length, 1000);
  });

  it('slow_close: the close is held back by the delay', async () => {
    await px.apply({ tcp: [tcpFault(source.port, [{ type: 'slow_close', attributes: { delay: 600 } }])] });
    const r = await tcpExchange(at(source));
    assert.equal(r.data.length, SOURCE_BYTES);
    assert.ok(r.ms >= 600, `closed after ${r.ms} ms`);
  });

  it('upstream stream: toxics on the client → app direction', async () => {
    const sink = await startTcpApp('sink', 0, (s) => px.listen(s));
    try {
      await px.apply({ tcp: [tcpFault(sink.port, [{ type: 'limit_data', stream: 'upstream', attributes: { bytes: 5000 } }])] });
      await tcpExchange(at(sink), randomBytes(100_000));
      await waitFor('the sink to record the connection', () => sink.received.length > 0);
      assert.equal(sink.received[0], 5000);
    } finally {
      await sink.close();
    }
  });

  it('reconciles idempotently: same plan, no writes, open connections survive', async () => {
    const fault = tcpFault(echo.port, [{ type: 'latency', attributes: { latency: 50 } }]);
    await px.apply({ tcp: [fault] });
    const writes = (await px.stats()).toxiproxy.writes;
    const state = await proxies();

    // An open connection through the proxy…
    const s = net.connect(at(echo));
    await new Promise((r) => s.once('connect', r));
    const roundTrip = (msg: string): Promise<string> =>
      new Promise((resolve) => {
        s.once('data', (d) => resolve(d.toString()));
        s.write(msg);
      });
    assert.equal(await roundTrip('one'), 'one');

    // …the same toxics again (the plan object differs: a later expiry).
    const runsBefore = (await px.stats()).toxiproxy.runs!.finished;
    await px.apply({ tcp: [{ ...fault, expiresAt: fault.expiresAt + 1_000 }] });
    // The new plan's reconcile run has finished: it had its chance to write.
    await waitFor('the reconcile run for the new plan', async () => {
      const runs = (await px.stats()).toxiproxy.runs!;
      return runs.finished > runsBefore && runs.finished === runs.requested;
    }, 5_000, 10);
    assert.deepEqual((await px.stats()).toxiproxy.writes, writes, 'no Toxiproxy writes for an unchanged plan');
    assert.deepEqual(await proxies(), state, 'proxies and toxics unchanged (same listen address: not recreated)');
    assert.equal(await roundTrip('two'), 'two', 'the open connection survived');

    // A changed attribute is an update in place, not a new proxy.
    await px.apply({ tcp: [tcpFault(echo.port, [{ type: 'latency', attributes: { latency: 80 } }])] });
    const after = await proxies();
    assert.equal(after['inbound-' + echo.port]!.listen, state['inbound-' + echo.port]!.listen);
    assert.equal(after['inbound-' + echo.port]!.toxics[0]!.attributes.latency, 80);
    const writesAfter = (await px.stats()).toxiproxy.writes!;
    assert.equal(writesAfter.toxicsUpdated, writes!.toxicsUpdated! + 1);
    assert.equal(writesAfter.proxiesCreated, writes!.proxiesCreated);
    assert.equal(await roundTrip('three'), 'three');
    s.destroy();
  });

  it('removes toxics and the proxy when the plan drops them', async () => {
    await px.apply({ tcp: [tcpFault(echo.port, [{ type: 'latency', attributes: { latency: 300 } }])] });
    assert.ok((await echoRoundTrip(at(echo))).ms >= 300);
    await px.apply({ tcp: [] });
    const r = await echoRoundTrip(at(echo));
    assert.ok(r.ms < 100, `still slow: ${r.ms} ms`);
    await waitFor('the idle proxy to be deleted', async () => Object.keys(await proxies()).length === 0, 2_000);
  });

  it('ends a TCP fault at its expiresAt without any plan update', async () => {
    const expiresAt = Date.now() + 1_500;
    await px.apply({ tcp: [tcpFault(echo.port, [{ type: 'latency', attributes: { latency: 200 } }], { expiresAt })] });
    const updates = (await px.stats()).planUpdates;
    assert.ok((await echoRoundTrip(at(echo))).ms >= 200);
    await sleep(expiresAt - Date.now() + 50);
    const r = await echoRoundTrip(at(echo));
    assert.ok(r.ms < 100, `still delayed after expiry: ${r.ms} ms`);
    assert.equal((await px.stats()).planUpdates, updates);
    await waitFor('Toxiproxy to drop the expired toxics', async () => Object.values(await proxies()).every((p) => p.toxics.length === 0), 2_000);
    assert.ok(px.find('fault ended', { status: 'expired', fault: 'tcp.latency' }).length > 0);
  });

  it('fails open when toxiproxy-server dies, then restores the toxics', async () => {
    await px.apply({ tcp: [tcpFault(echo.port, [{ type: 'latency', attributes: { latency: 300 } }])] });
    assert.ok((await echoRoundTrip(at(echo))).ms >= 300);
    const { toxiproxy: { pid }, toxiproxyRestarts: restarts } = await px.stats();
    process.kill(pid!, 'SIGKILL');

    // Within a second, traffic to the faulted port flows again (unfaulted).
    const t0 = Date.now();
    await waitFor(
      'traffic to flow without Toxiproxy',
      async () => {
        const r = await echoRoundTrip(at(echo)).catch(() => undefined);
        return r !== undefined && r.ms < 300;
      },
      1_000,
      20,
    );
    assert.ok(Date.now() - t0 < 1_000);

    // The supervisor restarts it, logs it, and the reconciler restores the toxic.
    await waitFor('toxiproxy to come back', async () => {
      const { toxiproxy } = await px.stats();
      return toxiproxy.up && toxiproxy.pid !== pid;
    }, 10_000, 50);
    assert.equal((await px.stats()).toxiproxyRestarts, restarts + 1);
    assert.ok(px.find('toxiproxy-server exited; TCP faults fail open until it is back').length > 0);
    await waitFor(
      'the toxic to be restored',
      async () => (await echoRoundTrip(at(echo))).ms >= 300,
      5_000,
      50,
    );
    assert.equal((await proxies())[`inbound-${echo.port}`]!.toxics[0]!.type, 'latency');
  });
});

// Kernel-level faults in real pods on this kernel (no sch_netem): nft packet
// loss, a tbf rate limit, FUSE EIO on a volume and a time offset, applied by
// faultline-init at pod start; faultline-kernel stays up after its faults end,
// and a pod restarted after its faults expired starts cleanly.
import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import { DEMO_IMAGE } from '../../common/images.ts';
import type { ControlPlane } from '../../controlplane/index.ts';
import { CriClient } from '../../controlplane/node/cri.ts';
import { run } from '../../controlplane/node/host.ts';
import type { ChaosPolicySpec } from '../../policies/types.ts';
import { API_GROUP_VERSION } from '../../policies/wellknown.ts';
import { createTenant, eventually, freshNamespace, kubectlOk, nodeCluster } from '../support/node-cluster.ts';

interface ContainerStatus {
  name: string;
  ready: boolean;
  restartCount: number;
  state: { running?: object; terminated?: { exitCode: number } };
}

describe('node: kernel-level faults in real pods', function () {
  this.timeout(300_000);
  let cp: ControlPlane;
  let ns: string;

  before(async function () {
    cp = await nodeCluster();
    ns = await freshNamespace(cp, 'kernel', true);
    await createTenant(cp, ns, { kinds: ['network.loss', 'network.rate', 'io.error', 'time.offset'], privileged: true, limits: { maxDuration: '1h', maxPodPercent: 100 } });
  });

  async function policy(name: string, app: string, spec: Partial<ChaosPolicySpec>): Promise<void> {
    await kubectlOk(cp, 'alice', ['apply', '-n', ns, '-f', '-'], stringify({
      apiVersion: API_GROUP_VERSION,
      kind: 'ChaosPolicy',
      metadata: { name },
      spec: { selector: { matchLabels: { app } }, mode: { type: 'all' }, duration: '10m', ...spec },
    }));
  }

  /** Creates a pod labelled app=<name> running `command` (plus a data volume at /data). */
  async function createPod(name: string, command = ['sleep', '3600']): Promise<void> {
    await kubectlOk(cp, 'admin', ['create', '-n', ns, '-f', '-'], JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, labels: { app: name } },
      spec: {
        containers: [{ name: 'app', image: DEMO_IMAGE, command, volumeMounts: [{ name: 'data', mountPath: '/data' }] }],
        volumes: [{ name: 'data', emptyDir: {} }],
      },
    }));
  }

  /** createPod, then wait for Ready. */
  async function runPod(name: string, command?: string[]): Promise<void> {
    await createPod(name, command);
    await kubectlOk(cp, 'admin', ['wait', '--for=condition=Ready', `pod/${name}`, '-n', ns, '--timeout=150s'], undefined, 160_000);
  }

  const exec = (pod: string, cmd: string[]) => cp.kubectl('admin', ['exec', pod, '-n', ns, '-c', 'app', '--', ...cmd]);

  it('drops every packet with nft loss (100%): the kubelet cannot even probe the pod', async () => {
    await policy('loss', 'lossy', { network: { loss: { percent: 100 } } });
    await createPod('lossy');
    // faultline-init ran (and put the rule in); then every packet the pod sends
    // is dropped, so the proxy's startup probe, from the node, never passes.
    await eventually('a failed startup probe', 60_000, async () => {
      const events = await kubectlOk(cp, 'admin', ['get', 'events', '-n', ns, '--field-selector', 'involvedObject.name=lossy', '-o', 'jsonpath={.items[*].message}']);
      return /Startup probe failed/.test(events) ? true : 'no failed startup probe yet';
    });
    const pod = JSON.parse(await kubectlOk(cp, 'admin', ['get', 'pod', 'lossy', '-n', ns, '-o', 'json'])) as { status: { initContainerStatuses: Array<ContainerStatus & { started?: boolean }> } };
    const init = pod.status.initContainerStatuses.find((c) => c.name === 'faultline-init');
    assert.equal(init?.state.terminated?.exitCode, 0, JSON.stringify(init));
    assert.notEqual(pod.status.initContainerStatuses.find((c) => c.name === 'faultline-proxy')?.started, true);
    await kubectlOk(cp, 'admin', ['delete', 'pod', 'lossy', '-n', ns, '--wait=false']);
  });

  it('limits the pod\'s egress rate with tbf', async () => {
    await policy('rate', 'slow', { network: { rate: '400kbit' } });
    // 200 KB served from the pod, fetched from the node: the pod's egress is shaped.
    const serve = "require('http').createServer((q, s) => s.end(Buffer.alloc(200000))).listen(9000)";
    await runPod('slow', ['/usr/local/bin/node', '-e', serve]);
    const ip = (await kubectlOk(cp, 'admin', ['get', 'pod', 'slow', '-n', ns, '-o', 'jsonpath={.status.podIP}'])).trim();
    // Ready means running here (no probe): node may not listen yet on a busy machine.
    await eventually('the server listening', 20_000, async () => ((await run('bash', ['-c', `echo > /dev/tcp/${ip}/9000`])).code === 0 ? true : 'refused'));
    const r = await run('curl', ['-sS', '--max-time', '30', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', `http://${ip}:9000/`]);
    assert.equal(r.code, 0, r.stderr);
    const [bytes, secs] = r.stdout.split(' ').map(Number);
    assert.equal(bytes, 200000);
    // 1.6 Mbit at 400 kbit/s: 4 s; unshaped it takes milliseconds.
    assert.ok(secs! >= 3, `200 KB took ${secs} s`);
  });

  it('returns EIO from the FUSE volume', async () => {
    await policy('eio', 'eio', { io: [{ volumePath: '/data', errno: 'EIO', methods: ['read', 'open'] }] });
    await runPod('eio');
    const r = await exec('eio', ['sh', '-c', 'echo hi > /data/f; cat /data/f']);
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stderr, /Input\/output error/);
  });

  it('shifts the app\'s clock by the offset', async () => {
    await policy('clock', 'clock', { time: { offset: '-2h' } });
    await runPod('clock');
    const r = await exec('clock', ['date', '+%s']);
    assert.equal(r.code, 0, r.stderr);
    const skew = Date.now() / 1000 - Number(r.stdout.trim());
    assert.ok(Math.abs(skew - 7200) < 120, `clock skew ${skew.toFixed(0)} s, want about 7200`);
  });

  it('keeps faultline-kernel up after its fault ends, and a pod restarted after expiry starts cleanly', async () => {
    await policy('brief', 'brief', { duration: '8s', network: { loss: { percent: 100 } } });
    await runPod('brief');
    const kernel = async () => {
      const p = JSON.parse(await kubectlOk(cp, 'admin', ['get', 'pod', 'brief', '-n', ns, '-o', 'json'])) as { status: { initContainerStatuses: ContainerStatus[] } };
      return p.status.initContainerStatuses.find((c) => c.name === 'faultline-kernel');
    };
    assert.ok(await kernel(), 'the pod has a faultline-kernel sidecar');
    // Past expiry and the kernel's qdisc/rule removal, it is still the first instance.
    await eventually('the fault to end', 30_000, async () => {
      const r = await exec('brief', ['curl', '-sk', '--max-time', '2', '-o', '/dev/null', '-w', '%{http_code}', 'https://kubernetes.default.svc/version']);
      return r.stdout === '200' ? true : `curl ${r.code} ${r.stdout}`;
    });
    await new Promise((r) => setTimeout(r, 3000));
    const k = await kernel();
    assert.equal(k?.restartCount, 0, JSON.stringify(k));
    assert.ok(k?.state.running, JSON.stringify(k));

    // The pod restarted after expiry (its sandbox stopped, as by a node
    // reboot): init runs again with the same, expired plan and the pod gets Ready.
    const cri = new CriClient(cp.node!.layout.containerdSocket);
    try {
      const sandbox = (await cri.sandboxes()).find((s) => s.metadata?.name === 'brief' && s.metadata.namespace === ns && s.state === 0);
      assert.ok(sandbox, 'the pod has a ready sandbox');
      await cri.stopSandbox(sandbox.id);
    } finally {
      cri.close();
    }
    await eventually('the restarted pod Ready', 120_000, async () => {
      const p = JSON.parse(await kubectlOk(cp, 'admin', ['get', 'pod', 'brief', '-n', ns, '-o', 'json'])) as {
        status: { conditions?: Array<{ type: string; status: string }>; initContainerStatuses: ContainerStatus[] };
      };
      const init = p.status.initContainerStatuses.find((c) => c.name === 'faultline-init');
      const ready = p.status.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
      return ready && (init?.restartCount ?? 0) >= 1 ? true : `ready ${ready}, init restarts ${init?.restartCount}`;
    });
  });
});

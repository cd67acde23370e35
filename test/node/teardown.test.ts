// Nothing outlives the node: after stop(), and after the process that started
// it is SIGKILLed (the reaper runs the same teardown), no process, shim,
// container cgroup, mount, netns, bridge or veth, nft table, iptables chain,
// sysctl change or lock is left. Runs last: it stops the suite's cluster.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEMO_IMAGE } from '../../common/images.ts';
import type { NodeLayout } from '../../controlplane/node/config.ts';
import { alive } from '../../controlplane/node/host.ts';
import { firstJsonLine } from '../support/child-json.ts';
import { eventually, freshNamespace, kubectlOk, leftovers, nodeCluster, stopNodeCluster, suiteBaseline } from '../support/node-cluster.ts';

describe('node: teardown', function () {
  this.timeout(300_000);

  it('stop() leaves nothing behind, with pods running', async () => {
    const cp = await nodeCluster();
    const ns = await freshNamespace(cp, { prefix: 'teardown' });
    await kubectlOk(cp, 'admin', ['run', 'victim', '-n', ns, '--image', DEMO_IMAGE, '--restart=Never', '--command', '--', 'sleep', '600']);
    await kubectlOk(cp, 'admin', ['wait', '--for=condition=Ready', 'pod/victim', '-n', ns, '--timeout=120s'], undefined, 130_000);
    const layout = cp.node!.layout;
    const pids = Object.values(cp.pids);
    await stopNodeCluster();
    assert.deepEqual(await leftovers(layout, suiteBaseline(), pids), []);
    assert.ok(!existsSync(cp.dir), `${cp.dir} still exists`);
  });

  it('leaves nothing behind when the process that started it is SIGKILLed', async () => {
    const script = fileURLToPath(new URL('../support/node-orphan-child.ts', import.meta.url));
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const { dir, layout, pids, podReady } = await firstJsonLine<{ dir: string; layout: NodeLayout; pids: Record<string, number>; podReady: true | string }>(
        child,
        'its node was up',
      );
      assert.equal(podReady, true, `the child's pod did not become Ready: ${String(podReady)}`);
      assert.ok(['kubelet', 'containerd', 'kube-proxy', 'coredns', 'kube-scheduler', 'kube-controller-manager'].every((p) => p in pids), Object.keys(pids).join(', '));

      child.kill('SIGKILL');
      // The reaper runs the node's teardown, then stops the control plane and removes the dir.
      await eventually('the reaper to finish', 120_000, async () => {
        const running = [];
        for (const pid of Object.values(pids)) if (await alive(pid)) running.push(pid);
        return running.length === 0 && !existsSync(dir) ? true : `running ${running.join(',')}; dir ${existsSync(dir)}`;
      });
      await sleep(200);
      assert.deepEqual(await leftovers(layout, suiteBaseline(), Object.values(pids)), []);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

// The local control plane itself: who the test users are, the real
// kube-controller-manager's work, and that nothing outlives a test process
// that dies hard.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { firstJsonLine } from '../support/child-json.ts';
import { freshNamespace, kubectlOk, useControlPlane } from '../support/e2e-cluster.ts';

describe('e2e: the local control plane', function () {
  const cp = useControlPlane();

  it('authenticates the static-token users with their groups', async () => {
    const whoami = JSON.parse(await kubectlOk(cp(), 'alice', ['auth', 'whoami', '-o', 'json'])) as {
      status: { userInfo: { username: string; groups: string[] } };
    };
    assert.equal(whoami.status.userInfo.username, 'alice');
    assert.deepEqual(whoami.status.userInfo.groups.sort(), ['system:authenticated', 'tenant-shop']);
  });

  it('authorises by RBAC: a tenant is forbidden outside the namespaces bound to them', async () => {
    const bobs = await freshNamespace(cp(), { editor: 'bob' });
    const res = await cp().kubectl('alice', ['get', 'pods', '-n', bobs]);
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /Forbidden.*"alice" cannot list resource "pods"/);
    await kubectlOk(cp(), 'bob', ['get', 'pods', '-n', bobs]);
  });

  it('aggregates Faultline’s tenant roles into the built-in edit role (kube-controller-manager)', async () => {
    const ns = await freshNamespace(cp(), { editor: 'alice' });
    const other = await freshNamespace(cp());
    const canI = async (namespace: string) => (await cp().kubectl('alice', ['auth', 'can-i', 'create', 'chaospolicies.chaos.faultline.dev', '-n', namespace])).stdout.trim();
    assert.equal(await canI(ns), 'yes');
    assert.equal(await canI(other), 'no');
  });

  it('gives every new namespace a default ServiceAccount and kube-root-ca.crt (kube-controller-manager)', async () => {
    // freshNamespace already waits for it; this names the behaviour.
    const ns = await freshNamespace(cp());
    await kubectlOk(cp(), 'admin', ['get', 'serviceaccount', 'default', '-n', ns]);
    const deadline = Date.now() + 15_000;
    while ((await cp().kubectl('admin', ['get', 'configmap', 'kube-root-ca.crt', '-n', ns])).code !== 0) {
      assert.ok(Date.now() < deadline, `namespace ${ns} has no kube-root-ca.crt after 15 s`);
      await sleep(100);
    }
  });

  it('finalises a deleted namespace (kube-controller-manager)', async () => {
    const ns = await freshNamespace(cp());
    await kubectlOk(cp(), 'admin', ['delete', 'namespace', ns, '--wait=true', '--timeout=60s']);
    assert.notEqual((await cp().kubectl('admin', ['get', 'namespace', ns])).code, 0);
  });

  it('leaves no process or file behind when the process that started it is SIGKILLed', async function () {
    this.timeout(120_000);
    const script = fileURLToPath(new URL('../support/e2e-orphan-child.ts', import.meta.url));
    const child = spawn(process.execPath, [script, 'with-webhook'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const { dir, pids } = await firstJsonLine<{ dir: string; pids: Record<string, number> }>(child, 'its control plane was up');
      assert.deepEqual(Object.keys(pids).sort(), ['etcd', 'kube-apiserver', 'kube-controller-manager', 'webhook']);
      assert.ok(existsSync(dir));

      child.kill('SIGKILL');
      // The reaper sends SIGTERM at once and SIGKILL after 5 s.
      const deadline = Date.now() + 15_000;
      const alive = () => Object.entries(pids).filter(([, pid]) => isAlive(pid));
      while ((alive().length > 0 || existsSync(dir)) && Date.now() < deadline) await sleep(100);
      assert.deepEqual(alive(), [], 'control-plane processes still running');
      assert.ok(!existsSync(dir), `${dir} still exists`);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

/**
 * Running, by /proc: `kill(pid, 0)` also succeeds for a zombie, and the
 * orphans' new parent (PID 1 in a container) may be slow to reap them.
 */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the parenthesised command name, which may contain spaces.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

// The single-node cluster itself: the node registers Ready, the real
// kube-controller-manager publishes what pods mount, CoreDNS serves
// cluster.local, kube-proxy routes Services, and a pod reaches the API server
// through the `kubernetes` Service by name.
import assert from 'node:assert/strict';
import { Resolver } from 'node:dns/promises';
import { DEMO_IMAGE } from '../../common/images.ts';
import { NODE_NAME, NODE_NETWORK, type ControlPlane } from '../../controlplane/index.ts';
import { run } from '../../controlplane/node/host.ts';
import { eventually, freshNamespace, kubectlOk, nodeCluster } from '../support/node-cluster.ts';

describe('node: the cluster', function () {
  this.timeout(240_000);
  let cp: ControlPlane;

  before(async function () {
    cp = await nodeCluster();
  });

  it('registers one Ready node of the pinned version, on the node IP', async () => {
    const node = JSON.parse(await kubectlOk(cp, 'admin', ['get', 'node', NODE_NAME, '-o', 'json'])) as {
      status: { conditions: Array<{ type: string; status: string }>; nodeInfo: { kubeletVersion: string; containerRuntimeVersion: string }; addresses: Array<{ type: string; address: string }> };
    };
    assert.equal(node.status.conditions.find((c) => c.type === 'Ready')?.status, 'True');
    assert.equal(node.status.nodeInfo.kubeletVersion, 'v1.36.3');
    assert.match(node.status.nodeInfo.containerRuntimeVersion, /^containerd:\/\/1\.6\./);
    assert.deepEqual(node.status.addresses.find((a) => a.type === 'InternalIP')?.address, NODE_NETWORK.gateway);
  });

  it('gives a new namespace its default ServiceAccount and kube-root-ca.crt (kube-controller-manager)', async () => {
    const ns = await freshNamespace(cp, { prefix: 'kcm' });
    await eventually('default ServiceAccount and kube-root-ca.crt', 20_000, async () => {
      const sa = await cp.kubectl('admin', ['get', 'serviceaccount', 'default', '-n', ns]);
      const cm = await cp.kubectl('admin', ['get', 'configmap', 'kube-root-ca.crt', '-n', ns, '-o', 'jsonpath={.data.ca\\.crt}']);
      return sa.code === 0 && cm.code === 0 && cm.stdout.includes('BEGIN CERTIFICATE') ? true : `sa ${sa.code}, configmap ${cm.code}`;
    });
  });

  it('serves cluster.local from CoreDNS on the node IP', async () => {
    const resolver = new Resolver({ timeout: 2000, tries: 2 });
    resolver.setServers([NODE_NETWORK.gateway]);
    assert.deepEqual(await resolver.resolve4('kubernetes.default.svc.cluster.local'), ['10.0.0.1']);
  });

  it('programs Services into kube-proxy nftables rules', async () => {
    const out = await run('nft', ['list', 'table', 'ip', 'kube-proxy']);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /10\.0\.0\.1/);
  });

  it('runs a plain pod that reaches the API server through the kubernetes Service by name', async () => {
    const ns = await freshNamespace(cp, { prefix: 'plain' });
    await kubectlOk(cp, 'admin', ['run', 'probe', '-n', ns, '--image', DEMO_IMAGE, '--restart=Never', '--command', '--', 'sleep', '600']);
    await kubectlOk(cp, 'admin', ['wait', '--for=condition=Ready', `pod/probe`, '-n', ns, '--timeout=120s'], undefined, 130_000);
    // /version is readable without credentials (system:public-info-viewer): a 200 proves DNS, the Service and the route.
    const out = await kubectlOk(cp, 'admin', [
      'exec', 'probe', '-n', ns, '--', 'curl', '-sS', '--cacert', '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
      '-o', '/dev/null', '-w', '%{http_code}', 'https://kubernetes.default.svc/version',
    ]);
    assert.equal(out, '200');
  });
});

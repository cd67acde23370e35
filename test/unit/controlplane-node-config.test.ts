// The node's rendered configuration pins what this machine kind needs, and the
// pure parts of teardown (iptables cleanup script) and of `up` (the
// walkthrough, the "what is missing" text) say what they should.
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { renderSteps, walkthroughSteps } from '../../cli/walkthrough.ts';
import {
  cniConflist,
  containerdConfig,
  corefile,
  kubeletConfig,
  kubeProxyConfig,
  NODE_NETWORK,
  type NodeLayout,
} from '../../controlplane/node/config.ts';
import { iptablesCleanupScript, nodeFirewall } from '../../controlplane/node/host.ts';
import { describeMissing } from '../../controlplane/node/requirements.ts';
import { PAUSE_IMAGE } from '../../common/images.ts';

const layout: NodeLayout = {
  dir: '/tmp/faultline-x/node',
  containerdRoot: '/root/.cache/faultline/containerd',
  containerdState: '/tmp/faultline-x/node/containerd-state',
  containerdSocket: '/tmp/faultline-x/node/containerd.sock',
  cniConfDir: '/tmp/faultline-x/node/cni',
  cniBinDir: '/usr/lib/cni',
  ipamDir: '/tmp/faultline-x/node/ipam',
  kubeletRoot: '/tmp/faultline-x/node/kubelet',
  podLogsDir: '/tmp/faultline-x/node/pod-logs',
  cgroupRoot: '/faultline-x',
  runcBinary: '/usr/sbin/runc',
};

describe('controlplane/node: configuration', () => {
  it('containerd: private root/state/socket, restrict_oom_score_adj, runc + overlayfs, the local pause image, CNI dirs', () => {
    const toml = containerdConfig(layout, 40123);
    for (const line of [
      `root = "${layout.containerdRoot}"`,
      `state = "${layout.containerdState}"`,
      `address = "${layout.containerdSocket}"`,
      'restrict_oom_score_adj = true',
      // containerd's own pick of a streaming port could take a port the run already handed out.
      'stream_server_address = "127.0.0.1"',
      'stream_server_port = "40123"',
      'snapshotter = "overlayfs"',
      'runtime_type = "io.containerd.runc.v2"',
      'BinaryName = "/usr/sbin/runc"',
      'SystemdCgroup = false',
      `sandbox_image = "${PAUSE_IMAGE}"`,
      'bin_dir = "/usr/lib/cni"',
      `conf_dir = "${layout.cniConfDir}"`,
    ]) {
      assert.ok(toml.includes(line), `missing ${line} in\n${toml}`);
    }
    assert.doesNotMatch(toml, /\/var\/lib\/containerd|\/run\/containerd/);
  });

  it('CNI: bridge on the private subnet, no masquerade, host-local state in the run dir, portmap', () => {
    const conf = JSON.parse(cniConflist(layout)) as { plugins: Array<Record<string, unknown>> };
    const bridge = conf.plugins[0]!;
    assert.equal(bridge.type, 'bridge');
    assert.equal(bridge.bridge, NODE_NETWORK.bridge);
    assert.equal(bridge.ipMasq, false);
    const ipam = bridge.ipam as { dataDir: string; ranges: Array<Array<{ subnet: string }>> };
    assert.equal(ipam.dataDir, layout.ipamDir);
    assert.equal(ipam.ranges[0]![0]!.subnet, NODE_NETWORK.podCidr);
    assert.deepEqual(
      conf.plugins.map((p) => p.type),
      ['bridge', 'portmap'],
    );
  });

  it('kubelet: cgroupfs on cgroup v1, no swap failure, webhook authn/z with the API CA, cluster DNS on the node IP', () => {
    const c = parse(kubeletConfig({ layout, clientCaFile: '/ca.crt', port: 1, healthzPort: 2, resolvConf: '/r' })) as Record<string, unknown>;
    assert.equal(c.cgroupDriver, 'cgroupfs');
    assert.equal(c.failCgroupV1, false);
    assert.equal(c.failSwapOn, false);
    assert.equal(c.readOnlyPort, 0);
    assert.deepEqual(c.authentication, { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: '/ca.crt' } });
    assert.deepEqual(c.authorization, { mode: 'Webhook' });
    assert.deepEqual(c.clusterDNS, [NODE_NETWORK.gateway]);
    assert.equal(c.containerRuntimeEndpoint, `unix://${layout.containerdSocket}`);
    assert.equal(c.cgroupRoot, layout.cgroupRoot);
    assert.equal(c.podLogsDir, layout.podLogsDir);
  });

  it('kube-proxy: Services on the node IP only, conntrack left alone', () => {
    const c = parse(kubeProxyConfig({ kubeconfig: '/k', mode: 'nftables', healthzPort: 1, metricsPort: 2 })) as Record<string, unknown>;
    assert.equal(c.mode, 'nftables');
    assert.deepEqual(c.nodePortAddresses, ['primary']);
    assert.equal(c.clusterCIDR, NODE_NETWORK.podCidr);
    assert.deepEqual(c.conntrack, { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' });
  });

  it('CoreDNS: cluster.local on the node IP, nothing forwarded', () => {
    const f = corefile('/k', 9);
    assert.match(f, new RegExp(`bind ${NODE_NETWORK.gateway.replace(/\./g, '\\.')}`));
    assert.match(f, /kubernetes cluster\.local/);
    assert.doesNotMatch(f, /forward/);
  });

  it('firewall: drops whatever the bridge would forward off the pod subnet', () => {
    const rules = nodeFirewall();
    assert.match(rules, new RegExp(`iifname "${NODE_NETWORK.bridge}" ip daddr != ${NODE_NETWORK.podCidr.replace(/\./g, '\\.')} drop`));
  });
});

describe('controlplane/node: iptables cleanup script', () => {
  it('deletes jumps into KUBE-/CNI- chains, then flushes and deletes those chains, per table', () => {
    const dump = [
      '*filter',
      ':INPUT ACCEPT [0:0]',
      ':KUBE-FIREWALL - [0:0]',
      ':DOCKER - [0:0]',
      '-A INPUT -m comment --comment "kubernetes firewall" -j KUBE-FIREWALL',
      '-A INPUT -j DOCKER',
      '-A KUBE-FIREWALL -j DROP',
      'COMMIT',
      '*nat',
      ':PREROUTING ACCEPT [0:0]',
      'COMMIT',
      '*mangle',
      ':CNI-HOSTPORT-MASQ - [0:0]',
      'COMMIT',
    ].join('\n');
    assert.equal(
      iptablesCleanupScript(dump),
      [
        '*filter',
        '-D INPUT -m comment --comment "kubernetes firewall" -j KUBE-FIREWALL',
        '-F KUBE-FIREWALL',
        '-X KUBE-FIREWALL',
        'COMMIT',
        '*mangle',
        '-F CNI-HOSTPORT-MASQ',
        '-X CNI-HOSTPORT-MASQ',
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  it('is empty when nothing is ours', () => {
    assert.equal(iptablesCleanupScript('*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j DOCKER\nCOMMIT\n'), '');
  });
});

describe('faultline up: messages and walkthrough', () => {
  it('lists what is missing with its fix, and one apt line for all packages', () => {
    const text = describeMissing([
      { what: 'root', fix: 'run as root' },
      { what: 'containerd (/usr/bin/containerd)', fix: 'apt-get install containerd' },
    ]);
    assert.match(text, /- root: run as root/);
    assert.match(text, /- containerd \(\/usr\/bin\/containerd\): apt-get install containerd/);
    assert.match(text, /all packages at once: apt-get install containerd runc containernetworking-plugins/);
  });

  it('prints each step as a command; alice by her kubeconfig; stdin as a here-document', () => {
    const text = renderSteps(walkthroughSteps(), { admin: '/a.kubeconfig', alice: '/alice.kubeconfig' });
    assert.match(text, /^ {2}kubectl create namespace shop$/m);
    assert.match(text, /^ {2}kubectl --kubeconfig \/alice\.kubeconfig apply -n shop -f - <<'EOF'\napiVersion: chaos\.faultline\.dev\/v1alpha1\nkind: ChaosPolicy/m);
    assert.match(text, /^EOF$/m);
    assert.match(text, /kubectl exec client -- curl .* http:\/\/web\.shop\/$/m);
    // The curl format survives the shell: single-quoted, with curl's own \n.
    assert.match(text, /-w '%\{http_code\} %\{time_total\}s\\n'/);
  });
});

// The node's configuration files, rendered from one NodeLayout. Pure: no I/O,
// so unit tests pin every setting that was found necessary on this machine
// kind (hybrid cgroup v1, no CAP_SYS_RESOURCE, no outbound route for pods).
import { stringify } from 'yaml';
import { PAUSE_IMAGE } from '../../common/images.ts';

/** The node's network: one Linux bridge on a private /24 that routes nowhere. */
export const NODE_NETWORK = {
  bridge: 'faultline0',
  /** Pod addresses (host-local IPAM); also kube-proxy's clusterCIDR. */
  podCidr: '10.233.0.0/24',
  /** The bridge's own address: the node IP, where kube-apiserver, the kubelet and CoreDNS listen. */
  gateway: '10.233.0.1',
  prefixLength: 24,
  /** The CNI network name (and host-local's IPAM directory name). */
  cniNetwork: 'faultline',
} as const;

export const NODE_NAME = 'faultline-node';
export const CLUSTER_DOMAIN = 'cluster.local';
/** containerd's namespace for CRI (the kubelet's) containers and images. */
export const CRI_NAMESPACE = 'k8s.io';

/** Where everything of one node run lives. */
export interface NodeLayout {
  /** Per-run directory (removed at teardown). */
  dir: string;
  /** containerd's root: persistent, so loaded images survive between runs. */
  containerdRoot: string;
  /** containerd's state (sockets, task bundles, rootfs mounts): per run. */
  containerdState: string;
  containerdSocket: string;
  cniConfDir: string;
  cniBinDir: string;
  /** host-local's allocations (default /var/lib/cni/networks: not ours to leave files in). */
  ipamDir: string;
  kubeletRoot: string;
  podLogsDir: string;
  /** Pods' cgroups go under this (cgroupfs driver): one subtree to check and remove. */
  cgroupRoot: string;
  runcBinary: string;
}

/**
 * containerd 1.6 config (version 2 schema), private to this run: nothing under
 * /etc, /var/lib or /run/containerd. `streamPort`: the CRI streaming server's
 * (exec, attach, port-forward), picked with the run's other ports.
 */
export function containerdConfig(l: NodeLayout, streamPort: number): string {
  const cri = 'io.containerd.grpc.v1.cri';
  return `version = 2
root = ${q(l.containerdRoot)}
state = ${q(l.containerdState)}
oom_score = 0
# Snapshotters that cannot work here and the opt plugin (which would write /opt/containerd).
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.opt", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = ${q(l.containerdSocket)}

[ttrpc]
  address = ${q(`${l.containerdSocket}.ttrpc`)}

[metrics]
  address = ""

[plugins.${q(cri)}]
  sandbox_image = ${q(PAUSE_IMAGE)}
  # Without CAP_SYS_RESOURCE, lowering a container's oom_score_adj below ours fails.
  restrict_oom_score_adj = true
  enable_selinux = false
  disable_apparmor = true
  # Left at 0, containerd's own pick once took the kubelet's healthz port between
  # freePorts() and the kubelet's bind, and the kubelet never served /healthz.
  stream_server_address = "127.0.0.1"
  stream_server_port = ${q(String(streamPort))}
  # Images come only from the local import; a pull would leave the machine.
  [plugins.${q(cri)}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins.${q(cri)}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.${q(cri)}.containerd.runtimes.runc.options]
        BinaryName = ${q(l.runcBinary)}
        SystemdCgroup = false
  [plugins.${q(cri)}.cni]
    bin_dir = ${q(l.cniBinDir)}
    conf_dir = ${q(l.cniConfDir)}
    max_conf_num = 1
`;
}

/**
 * bridge + host-local + portmap (+ loopback, which containerd runs itself).
 * isGateway gives pods a default route to the bridge (Service IPs are DNATed on
 * the host); ipMasq is off and the host firewall (host.ts) drops anything
 * forwarded off the bridge, so no pod packet leaves the machine.
 */
export function cniConflist(l: NodeLayout): string {
  const n = NODE_NETWORK;
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: n.cniNetwork,
      plugins: [
        {
          type: 'bridge',
          bridge: n.bridge,
          isGateway: true,
          ipMasq: false,
          // A pod reaching itself through its own Service comes back over its veth.
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            dataDir: l.ipamDir,
            ranges: [[{ subnet: n.podCidr, gateway: n.gateway }]],
            routes: [{ dst: '0.0.0.0/0' }],
          },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  );
}

export interface KubeletSettings {
  layout: NodeLayout;
  /** The API server's CA: verifies its client certificate when it calls the kubelet (exec, logs). */
  clientCaFile: string;
  port: number;
  healthzPort: number;
  /** A resolv.conf for dnsPolicy: Default pods (no upstream: nothing leaves the machine). */
  resolvConf: string;
}

/**
 * KubeletConfiguration. cgroupfs + failCgroupV1: false because cgroups are v1
 * (hybrid) here; failSwapOn: false because the machine has swap or may. Eviction
 * thresholds are tiny and image GC is off: the node shares a disk with other
 * work, and evicting the walkthrough or deleting the locally built images
 * (which cannot be pulled again) would be worse than a full disk.
 */
export function kubeletConfig(s: KubeletSettings): string {
  const n = NODE_NETWORK;
  return stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    address: n.gateway,
    port: s.port,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: s.healthzPort,
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: s.clientCaFile },
    },
    authorization: { mode: 'Webhook' },
    cgroupDriver: 'cgroupfs',
    cgroupRoot: s.layout.cgroupRoot,
    failCgroupV1: false,
    failSwapOn: false,
    containerRuntimeEndpoint: `unix://${s.layout.containerdSocket}`,
    clusterDNS: [n.gateway],
    clusterDomain: CLUSTER_DOMAIN,
    resolvConf: s.resolvConf,
    podLogsDir: s.layout.podLogsDir,
    registerNode: true,
    evictionHard: { 'memory.available': '64Mi', 'nodefs.available': '1%', 'imagefs.available': '1%', 'nodefs.inodesFree': '1%' },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    serializeImagePulls: false,
    // Our own bridge has no kubelet-managed iptables to do.
    makeIPTablesUtilChains: false,
    // Pod status reaches the API server without the default 10 s sync lag on small changes.
    nodeStatusUpdateFrequency: '4s',
    syncFrequency: '10s',
    fileCheckFrequency: '20s',
    shutdownGracePeriod: '0s',
    localStorageCapacityIsolation: true,
    logging: { format: 'text' },
  });
}

export interface KubeProxySettings {
  kubeconfig: string;
  mode: 'nftables' | 'iptables';
  healthzPort: number;
  metricsPort: number;
}

/**
 * KubeProxyConfiguration: Services on the node IP only (`primary`, never
 * eth0), conntrack tunables left as the host has them (0 = don't touch).
 */
export function kubeProxyConfig(s: KubeProxySettings): string {
  return stringify({
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    mode: s.mode,
    clientConnection: { kubeconfig: s.kubeconfig },
    hostnameOverride: NODE_NAME,
    bindAddress: NODE_NETWORK.gateway,
    clusterCIDR: NODE_NETWORK.podCidr,
    healthzBindAddress: `127.0.0.1:${s.healthzPort}`,
    metricsBindAddress: `127.0.0.1:${s.metricsPort}`,
    nodePortAddresses: ['primary'],
    conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
    iptables: { localhostNodePorts: false },
  });
}

/**
 * CoreDNS as a host process on the node IP: cluster.local from the API
 * server, nothing forwarded (there is no outside). `ready` answers 200 once
 * the kubernetes plugin has synced.
 */
export function corefile(kubeconfig: string, readyPort: number): string {
  return `.:53 {
    bind ${NODE_NETWORK.gateway}
    errors
    ready 127.0.0.1:${readyPort}
    kubernetes ${CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {
        kubeconfig ${kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
    cache 5
}
`;
}

/** A TOML basic string. */
function q(s: string): string {
  return JSON.stringify(s);
}

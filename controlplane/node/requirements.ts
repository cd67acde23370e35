// What a real node needs from the machine, checked before anything starts, so
// `faultline up` can say exactly what is missing and how to get it instead of
// failing halfway through.
import { access, constants } from 'node:fs/promises';
import path from 'node:path';

export interface Missing {
  what: string;
  /** One line: the command or step that provides it. */
  fix: string;
}

const APT = 'apt-get install containerd runc containernetworking-plugins iptables nftables conntrack iproute2';

/** Where Debian's packages put the host tools the node runs. */
export const HOST_TOOLS = {
  containerd: '/usr/bin/containerd',
  ctr: '/usr/bin/ctr',
  runc: '/usr/sbin/runc',
  ip: '/usr/sbin/ip',
  nft: '/usr/sbin/nft',
  iptables: '/usr/sbin/iptables',
  conntrack: '/usr/sbin/conntrack',
} as const;
export const CNI_BIN_DIR = '/usr/lib/cni';
export const CNI_PLUGINS = ['bridge', 'host-local', 'loopback', 'portmap'] as const;

const PACKAGE_OF: Record<keyof typeof HOST_TOOLS, string> = {
  containerd: 'containerd',
  ctr: 'containerd',
  runc: 'runc',
  ip: 'iproute2',
  nft: 'nftables',
  iptables: 'iptables',
  conntrack: 'conntrack',
};

async function executable(file: string): Promise<boolean> {
  return access(file, constants.X_OK).then(
    () => true,
    () => false,
  );
}

/** Everything missing for a node on this machine (empty: go ahead). */
export async function missingForNode(): Promise<Missing[]> {
  const missing: Missing[] = [];
  if (process.platform !== 'linux') return [{ what: `Linux (this is ${process.platform})`, fix: 'run on a Linux machine or VM' }];
  if (process.getuid?.() !== 0) {
    missing.push({
      what: 'root (the kubelet, containerd and the pod network need it)',
      fix: 'run as root, e.g. `sudo -E npm start`',
    });
  }
  const tools = Object.entries(HOST_TOOLS) as [keyof typeof HOST_TOOLS, string][];
  const present = await Promise.all(tools.map(([, file]) => executable(file)));
  tools.forEach(([name, file], i) => {
    if (!present[i]) missing.push({ what: `${name} (${file})`, fix: `apt-get install ${PACKAGE_OF[name]}` });
  });
  for (const plugin of CNI_PLUGINS) {
    const file = path.join(CNI_BIN_DIR, plugin);
    if (!(await executable(file))) missing.push({ what: `CNI plugin ${plugin} (${file})`, fix: 'apt-get install containernetworking-plugins' });
  }
  if (!(await exists('/proc/sys/net/bridge/bridge-nf-call-iptables'))) {
    missing.push({ what: 'br_netfilter (Services between pods on one bridge)', fix: 'modprobe br_netfilter' });
  }
  return missing;
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/** "  - what: fix" lines, with the one apt line that covers every package. */
export function describeMissing(missing: readonly Missing[]): string {
  const lines = missing.map((m) => `  - ${m.what}: ${m.fix}`);
  if (missing.some((m) => m.fix.startsWith('apt-get install'))) lines.push(`  (all packages at once: ${APT})`);
  return lines.join('\n');
}

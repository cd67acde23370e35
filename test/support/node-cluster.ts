// The node suite's shared cluster (one per run: a node takes seconds to start
// and owns host-wide names), the host snapshot teardown is checked against,
// and the helpers of cluster.ts. Loaded with `mocha --require`: its mochaHooks
// stop the cluster after the last file.
import { readFile } from 'node:fs/promises';
import { NODE_IMAGES } from '../../controlplane/up.ts';
import { describeMissing, missingForNode, NODE_NETWORK, startControlPlane, type ControlPlane } from '../../controlplane/index.ts';
import type { NodeLayout } from '../../controlplane/node/config.ts';
import {
  alive,
  cgroupDirs,
  criNetnsNames,
  KUBE_PROXY_NFT_TABLES,
  mountsUnder,
  netnsDirMounted,
  NODE_NFT_TABLE,
  nftTables,
  ourIptablesChains,
  pidsWithArg,
  readSysctls,
  run,
  type SysctlValues,
} from '../../controlplane/node/host.ts';
import { LOCK_FILE } from '../../controlplane/node/teardown.ts';

// The node suite's share of the helpers every suite on a control plane uses.
export { eventually, freshNamespace, kubectlOk, tenantNamespace } from './cluster.ts';

/** What the host looked like before the suite's first node. */
export interface HostSnapshot {
  sysctls: SysctlValues;
  netns: string[];
  netnsDirMounted: boolean;
  veths: string[];
  iptablesChains: string[];
  nftTables: string[];
}

async function vethNames(): Promise<string[]> {
  const out = await run('ip', ['-o', 'link', 'show', 'type', 'veth']);
  return out.stdout
    .split('\n')
    .map((l) => /^\d+:\s+([^@:\s]+)/.exec(l)?.[1])
    .filter((n): n is string => !!n);
}

export async function hostSnapshot(): Promise<HostSnapshot> {
  return {
    sysctls: await readSysctls(),
    netns: await criNetnsNames(),
    netnsDirMounted: await netnsDirMounted(),
    veths: await vethNames(),
    iptablesChains: await ourIptablesChains(),
    nftTables: await nftTables(),
  };
}

/**
 * Everything a node run could leave on the host, compared with `before`:
 * processes, shims, mounts, netns, the bridge and veths, nft tables,
 * iptables chains, cgroups, sysctls, the lock. Empty = clean.
 */
export async function leftovers(layout: NodeLayout, before: HostSnapshot, pids: readonly number[]): Promise<string[]> {
  const found: string[] = [];
  for (const pid of pids) if (await alive(pid)) found.push(`process ${pid} still running`);
  for (const pid of await pidsWithArg(layout.containerdSocket)) found.push(`process ${pid} (containerd or a shim of it) still running`);
  for (const pid of await pidsWithArg(layout.dir)) found.push(`process ${pid} with the run dir in its command line still running`);
  for (const m of await mountsUnder([layout.dir, layout.containerdState, layout.kubeletRoot, '/var/run/netns', '/run/netns'])) {
    if (m === '/run/netns' && before.netnsDirMounted) continue;
    // Other netns under /run/netns are other tests' (`ip netns add`), not the CRI's.
    const netnsFile = /^\/(?:var\/)?run\/netns\/(.+)$/.exec(m)?.[1];
    if (netnsFile && (!netnsFile.startsWith('cni-') || before.netns.includes(netnsFile))) continue;
    found.push(`mount ${m}`);
  }
  for (const n of await criNetnsNames()) if (!before.netns.includes(n)) found.push(`netns ${n}`);
  if ((await run('ip', ['link', 'show', NODE_NETWORK.bridge])).code === 0) found.push(`bridge ${NODE_NETWORK.bridge}`);
  for (const v of await vethNames()) if (!before.veths.includes(v) && /^veth[0-9a-f]{8}$/.test(v)) found.push(`veth ${v}`);
  const tables = await nftTables();
  for (const t of [`inet ${NODE_NFT_TABLE}`, ...KUBE_PROXY_NFT_TABLES.map(([f, n]) => `${f} ${n}`)]) if (tables.includes(t)) found.push(`nft table ${t}`);
  for (const c of await ourIptablesChains()) if (!before.iptablesChains.includes(c)) found.push(`iptables chain ${c}`);
  for (const d of await cgroupDirs(layout.cgroupRoot)) found.push(`cgroup ${d}`);
  const now = await readSysctls(Object.keys(before.sysctls));
  for (const [k, v] of Object.entries(before.sysctls)) if (now[k] !== v) found.push(`sysctl ${k}=${now[k]} (was ${v})`);
  if (await readFile(LOCK_FILE, 'utf8').catch(() => undefined)) found.push(`lock ${LOCK_FILE}`);
  return found;
}

let shared: Promise<ControlPlane> | undefined;
let baseline: HostSnapshot | undefined;

/** The host as it was before the suite's first node. */
export function suiteBaseline(): HostSnapshot {
  if (!baseline) throw new Error('no node has been started yet');
  return baseline;
}

/** Throws, naming what is missing, where this machine cannot run a node. */
export async function requireNodeMachine(): Promise<void> {
  const missing = await missingForNode();
  if (missing.length) throw new Error(`the node suite needs a machine that can run a node; missing:\n${describeMissing(missing)}`);
}

/** The suite's cluster with a node, started on first use. */
export function nodeCluster(): Promise<ControlPlane> {
  shared ??= (async () => {
    await requireNodeMachine();
    baseline ??= await hostSnapshot();
    return startControlPlane({ node: { images: NODE_IMAGES }, progress: (l) => process.stderr.write(`      [node] ${l}\n`), readyTimeoutMs: 180_000 });
  })();
  return shared;
}

/** Stops the shared cluster (teardown.test.ts checks what it leaves). */
export async function stopNodeCluster(): Promise<void> {
  const cp = await shared?.catch(() => undefined);
  await cp?.stop();
}

export const mochaHooks = {
  async afterAll(this: Mocha.Context) {
    this.timeout(120_000);
    await stopNodeCluster();
  },
};

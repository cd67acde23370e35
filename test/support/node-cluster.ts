// The node suite's shared cluster (one per run: a node takes seconds to start
// and owns host-wide names), the host snapshot teardown is checked against,
// and small helpers for pods. Loaded with `mocha --require`: its mochaHooks
// stop the cluster after the last file.
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { NODE_IMAGES } from '../../cli/commands/up.ts';
import { describeMissing, missingForNode, NODE_NETWORK, startControlPlane, type ControlPlane, type KubectlResult, type User } from '../../controlplane/index.ts';
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
import type { ChaosTenantSpec } from '../../policies/types.ts';
import { API_GROUP_VERSION, CHAOS_LABEL, CHAOS_LABEL_ENABLED } from '../../policies/wellknown.ts';

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

/** kubectl that throws with stderr on failure. */
export async function kubectlOk(cp: ControlPlane, user: User, args: readonly string[], input?: string, timeoutMs?: number): Promise<string> {
  const r: KubectlResult = await cp.kubectl(user, args, { ...(input !== undefined ? { input } : {}), ...(timeoutMs ? { timeoutMs } : {}) });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/** Polls `probe` until it returns true (or a truthy value), at most `timeoutMs`; the last reason goes into the error. */
export async function eventually<T>(what: string, timeoutMs: number, probe: () => Promise<T | false | string>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const r = await probe().catch((err: Error) => err.message);
    if (r !== false && typeof r !== 'string') return r;
    if (typeof r === 'string') last = r;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last: ${last})` : ''}`);
    await sleep(200);
  }
}

/** A ChaosTenant owning `namespace` for group tenant-shop (alice), with `allow`; alice may edit there. */
export async function createTenant(cp: ControlPlane, namespace: string, allow: ChaosTenantSpec['allow']): Promise<void> {
  await kubectlOk(cp, 'admin', ['create', 'rolebinding', 'alice-edit', '--clusterrole=edit', '--user=alice', '-n', namespace]);
  const tenant = {
    apiVersion: API_GROUP_VERSION,
    kind: 'ChaosTenant',
    metadata: { name: `t-${namespace}` },
    spec: { namespaces: [namespace], subjects: [{ kind: 'Group', name: 'tenant-shop' }], allow },
  };
  await kubectlOk(cp, 'admin', ['create', '-f', '-'], JSON.stringify(tenant));
}

let nsCounter = 0;
/** A fresh namespace, chaos-enabled or not. */
export async function freshNamespace(cp: ControlPlane, prefix: string, chaos: boolean, labels: Record<string, string> = {}): Promise<string> {
  const ns = `${prefix}-${process.pid % 10000}-${++nsCounter}`;
  await kubectlOk(cp, 'admin', ['create', 'namespace', ns]);
  const all = { ...labels, ...(chaos ? { [CHAOS_LABEL]: CHAOS_LABEL_ENABLED } : {}) };
  const args = Object.entries(all).map(([k, v]) => `${k}=${v}`);
  if (args.length > 0) await kubectlOk(cp, 'admin', ['label', 'namespace', ns, ...args]);
  return ns;
}

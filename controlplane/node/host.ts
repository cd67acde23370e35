// What the node changes on the host, each with its undo: sysctls, the bridge
// and its firewall, netfilter rules left by kube-proxy/CNI, network
// namespaces, mounts, cgroups and stray processes. Every undo is idempotent
// and tolerates "already gone": teardown runs after a clean stop, after a
// crash (from the reaper) and before a start that finds a dead run's leftovers.
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { NODE_NETWORK } from './config.ts';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; never throws for a non-zero exit (the result says). */
export function run(file: string, args: readonly string[], input?: string, timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 127) : 0;
      resolve({ code, stdout, stderr: stderr || (err && code === 127 ? err.message : '') });
    });
    // A child that exits without reading its stdin must not crash us with EPIPE.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input ?? '');
  });
}

/** Runs a command and returns stdout, throwing with its stderr on failure. */
export async function must(file: string, args: readonly string[], input?: string): Promise<string> {
  const r = await run(file, args, input);
  if (r.code !== 0) throw new Error(`${file} ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

// --- sysctls ----------------------------------------------------------------

/**
 * Every sysctl the node's components are known to write: the kubelet's kernel
 * tunables (setupKernelTunables), the bridge plugin's ip_forward, our
 * br_netfilter switch, and kube-proxy's conntrack settings (which we ask it
 * to leave alone, but record in case a version does not).
 */
export const NODE_SYSCTLS = [
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'kernel/panic',
  'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
  'net/ipv4/ip_forward',
  'net/ipv4/conf/all/forwarding',
  'net/ipv4/conf/all/route_localnet',
  'net/bridge/bridge-nf-call-iptables',
  'net/bridge/bridge-nf-call-ip6tables',
  'net/netfilter/nf_conntrack_max',
  'net/netfilter/nf_conntrack_tcp_timeout_established',
  'net/netfilter/nf_conntrack_tcp_timeout_close_wait',
  'net/netfilter/nf_conntrack_tcp_be_liberal',
] as const;

export type SysctlValues = Record<string, string | null>;

/** Current values (null where the key does not exist on this kernel). */
export async function readSysctls(keys: readonly string[] = NODE_SYSCTLS): Promise<SysctlValues> {
  const values = await Promise.all(keys.map((k) => readFile(`/proc/sys/${k}`, 'utf8').then((v) => v.trim(), () => null)));
  return Object.fromEntries(keys.map((k, i) => [k, values[i]!]));
}

export async function writeSysctl(key: string, value: string): Promise<void> {
  await writeFile(`/proc/sys/${key}`, value);
}

/** Writes back every recorded value that differs now; returns what it changed. */
export async function restoreSysctls(saved: SysctlValues): Promise<string[]> {
  const now = await readSysctls(Object.keys(saved));
  const changed: string[] = [];
  for (const [key, value] of Object.entries(saved)) {
    if (value === null || now[key] === value) continue;
    // Write ip_forward after conf/all/forwarding: writing one resets the other.
    await writeSysctl(key, value).then(
      () => changed.push(`${key}=${value} (was ${now[key]})`),
      (err: Error) => changed.push(`${key}: could not restore ${value}: ${err.message}`),
    );
  }
  return changed;
}

// --- bridge and firewall ----------------------------------------------------

/** Table holding the node's own firewall rules (see applyNodeFirewall). */
export const NODE_NFT_TABLE = 'faultline-node';
/** nft tables kube-proxy (nftables mode) creates. */
export const KUBE_PROXY_NFT_TABLES = [
  ['ip', 'kube-proxy'],
  ['ip6', 'kube-proxy'],
] as const;

/** The bridge with the node IP, up. Created before kube-apiserver starts: it listens on that address. */
export async function createBridge(): Promise<void> {
  const n = NODE_NETWORK;
  await deleteBridge();
  await must('ip', ['link', 'add', n.bridge, 'type', 'bridge']);
  await must('ip', ['addr', 'add', `${n.gateway}/${n.prefixLength}`, 'dev', n.bridge]);
  await must('ip', ['link', 'set', n.bridge, 'up']);
}

/** Removes the bridge and any veth still attached to it. */
export async function deleteBridge(): Promise<void> {
  const n = NODE_NETWORK;
  const attached = await run('ip', ['-o', 'link', 'show', 'master', n.bridge]);
  for (const line of attached.stdout.split('\n')) {
    const name = /^\d+:\s+([^@:\s]+)/.exec(line)?.[1];
    if (name) await run('ip', ['link', 'delete', name]);
  }
  await run('ip', ['link', 'delete', n.bridge]);
}

/**
 * Keeps pod traffic on this machine and the node IP off other interfaces:
 * nothing from the bridge is forwarded anywhere but back onto the bridge,
 * and the node IP (kube-apiserver, kubelet, CoreDNS listen there) answers only
 * on the bridge and loopback.
 */
export function nodeFirewall(): string {
  const n = NODE_NETWORK;
  return `table inet ${NODE_NFT_TABLE} {
  chain forward {
    type filter hook forward priority filter - 1; policy accept;
    iifname "${n.bridge}" ip daddr != ${n.podCidr} drop
    oifname "${n.bridge}" ip saddr != ${n.podCidr} drop
    iifname "${n.bridge}" meta nfproto ipv6 drop
  }
  chain input {
    type filter hook input priority filter - 1; policy accept;
    ip daddr ${n.gateway} iifname != { "lo", "${n.bridge}" } drop
  }
}
`;
}

export async function applyNodeFirewall(): Promise<void> {
  await deleteNftTable('inet', NODE_NFT_TABLE);
  await must('nft', ['-f', '-'], nodeFirewall());
}

export async function deleteNftTable(family: string, name: string): Promise<void> {
  await run('nft', ['delete', 'table', family, name]);
}

/** Names of the nft tables present, as "family name". */
export async function nftTables(): Promise<string[]> {
  const out = await run('nft', ['list', 'tables']);
  return out.stdout
    .split('\n')
    .map((l) => /^table (\S+) (\S+)/.exec(l.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => `${m[1]} ${m[2]}`);
}

/** Chains kube-proxy (iptables mode), the kubelet and the CNI portmap plugin create. */
const OUR_CHAIN = /^(KUBE-|CNI-)/;

/**
 * iptables-restore script removing every KUBE-* / CNI-* chain of one
 * `iptables-save` dump, and the rules elsewhere that jump to them. Pure.
 */
export function iptablesCleanupScript(dump: string): string {
  const out: string[] = [];
  let table = '';
  let deletes: string[] = [];
  let chains: string[] = [];
  const flush = () => {
    if (table && (deletes.length || chains.length)) {
      out.push(`*${table}`, ...deletes, ...chains.map((c) => `-F ${c}`), ...chains.map((c) => `-X ${c}`), 'COMMIT');
    }
    deletes = [];
    chains = [];
  };
  for (const line of dump.split('\n')) {
    if (line.startsWith('*')) {
      flush();
      table = line.slice(1).trim();
    } else if (line.startsWith(':')) {
      const chain = line.slice(1).split(' ')[0]!;
      if (OUR_CHAIN.test(chain)) chains.push(chain);
    } else if (line.startsWith('-A ')) {
      const [, chain, ...rest] = line.split(' ');
      const target = /(?:^| )-[jg] (\S+)/.exec(line)?.[1] ?? '';
      if (!OUR_CHAIN.test(chain!) && OUR_CHAIN.test(target)) deletes.push(`-D ${chain} ${rest.join(' ')}`);
    } else if (line.startsWith('COMMIT')) {
      flush();
      table = '';
    }
  }
  flush();
  return out.length ? `${out.join('\n')}\n` : '';
}

/** KUBE-* and CNI-* chains in iptables and ip6tables ("ip nat KUBE-FOO"), for checks. */
export async function ourIptablesChains(): Promise<string[]> {
  const found: string[] = [];
  for (const [tool, family] of [
    ['iptables-save', 'ip'],
    ['ip6tables-save', 'ip6'],
  ] as const) {
    let table = '';
    for (const line of (await run(tool, [])).stdout.split('\n')) {
      if (line.startsWith('*')) table = line.slice(1).trim();
      const chain = line.startsWith(':') ? line.slice(1).split(' ')[0]! : '';
      if (OUR_CHAIN.test(chain)) found.push(`${family} ${table} ${chain}`);
    }
  }
  return found;
}

export async function cleanupIptables(): Promise<void> {
  for (const [save, restore] of [
    ['iptables-save', 'iptables-restore'],
    ['ip6tables-save', 'ip6tables-restore'],
  ] as const) {
    const script = iptablesCleanupScript((await run(save, [])).stdout);
    if (script) await must(restore, ['--noflush'], script);
  }
}

// --- network namespaces ---------------------------------------------------------

const NETNS_DIR = '/var/run/netns';

/** The CRI's pod network namespaces (containerd names them cni-<uuid>). */
export async function criNetnsNames(): Promise<string[]> {
  const names = await readdir(NETNS_DIR).catch(() => [] as string[]);
  return names.filter((n) => n.startsWith('cni-'));
}

/** Removes the pod netns files not present at `baseline` (their veths go with them). */
export async function removeNetns(baseline: readonly string[]): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await criNetnsNames()) {
    if (baseline.includes(name)) continue;
    const file = path.join(NETNS_DIR, name);
    await unmount(file);
    await rm(file, { force: true });
    removed.push(name);
  }
  return removed;
}

/** Whether /run/netns is a mount point (containerd and `ip netns` make it a shared bind mount of itself). */
export async function netnsDirMounted(): Promise<boolean> {
  return (await mountsUnder(['/run/netns'])).includes('/run/netns');
}

/**
 * Undoes containerd's bind mount of /run/netns when it was not mounted before
 * the run and no namespace is left in it (someone else's would still need it).
 */
export async function releaseNetnsDir(wasMounted: boolean): Promise<boolean> {
  if (wasMounted || !(await netnsDirMounted())) return false;
  if ((await readdir(NETNS_DIR).catch(() => [])).length > 0) return false;
  await unmount('/run/netns');
  return true;
}

// --- mounts ---------------------------------------------------------------------

/** Mount points at or under any of `prefixes`, deepest first. */
export async function mountsUnder(prefixes: readonly string[]): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const points = info
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p)
    .map((p) => p.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
  const ours = points.filter((p) => prefixes.some((prefix) => p === prefix || p.startsWith(`${prefix}/`)));
  return [...new Set(ours)].sort((a, b) => b.length - a.length);
}

async function unmount(point: string): Promise<void> {
  const r = await run('umount', [point]);
  if (r.code !== 0) await run('umount', ['-l', point]);
}

export async function unmountUnder(prefixes: readonly string[]): Promise<string[]> {
  const points = await mountsUnder(prefixes);
  for (const p of points) await unmount(p);
  return points;
}

// --- cgroups --------------------------------------------------------------------

const CGROUP_FS = '/sys/fs/cgroup';

/** `<hierarchy>/<cgroupRoot>` in every mounted cgroup hierarchy where it exists. */
export async function cgroupDirs(cgroupRoot: string): Promise<string[]> {
  const hierarchies = await readdir(CGROUP_FS).catch(() => [] as string[]);
  const found: string[] = [];
  for (const h of hierarchies) {
    const dir = path.join(CGROUP_FS, h, cgroupRoot);
    if (await stat(dir).then((s) => s.isDirectory(), () => false)) found.push(dir);
  }
  return found;
}

/**
 * Creates `<hierarchy>/<cgroupRoot>` in every mounted hierarchy: the kubelet
 * refuses a cgroupRoot that does not exist.
 */
export async function createCgroupRoot(cgroupRoot: string): Promise<void> {
  for (const h of await readdir(CGROUP_FS)) {
    await mkdir(path.join(CGROUP_FS, h, cgroupRoot), { recursive: true }).catch((err: NodeJS.ErrnoException) => {
      // Not a hierarchy (a stray file), or read-only: the kubelet will say if it needed it.
      if (err.code !== 'ENOTDIR' && err.code !== 'EROFS' && err.code !== 'EACCES') throw err;
    });
  }
}

/** PIDs in the cgroup subtree at `dir` (recursively). */
async function cgroupPids(dir: string): Promise<number[]> {
  const pids = (await readFile(path.join(dir, 'cgroup.procs'), 'utf8').catch(() => ''))
    .split('\n')
    .filter(Boolean)
    .map(Number);
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) if (e.isDirectory()) pids.push(...(await cgroupPids(path.join(dir, e.name))));
  return pids;
}

async function rmdirTree(dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) if (e.isDirectory()) await rmdirTree(path.join(dir, e.name));
  await rmdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

/**
 * Kills whatever still runs in the pods' cgroups (only containers can be
 * there) and removes the subtrees, in every hierarchy.
 */
export async function removeCgroups(cgroupRoot: string): Promise<void> {
  const dirs = await cgroupDirs(cgroupRoot);
  for (const dir of dirs) for (const pid of await cgroupPids(dir)) killPid(pid, 'SIGKILL');
  for (const dir of dirs) {
    // A killed process leaves its cgroup once reaped; give it a moment.
    for (let i = 0; ; i++) {
      try {
        await rmdirTree(dir);
        break;
      } catch (err) {
        if (i >= 50) throw new Error(`cannot remove cgroup ${dir}: ${(err as Error).message}`);
        await sleep(100);
      }
    }
  }
}

// --- processes ------------------------------------------------------------------

export function killPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** PIDs of live processes whose command line contains `needle` (e.g. our containerd socket). */
export async function pidsWithArg(needle: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.includes(needle)) continue;
    const st = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    if (st && st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3) !== 'Z') found.push(pid);
  }
  return found;
}

/** Whether `pid` is alive (a zombie counts as gone). */
export async function alive(pid: number): Promise<boolean> {
  const st = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return st !== '' && st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3) !== 'Z';
}

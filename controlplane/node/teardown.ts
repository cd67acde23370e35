// Undoes a node run, in the order that leaves nothing behind: the kubelet
// first (so it restarts nothing), then every pod through the CRI (containers,
// shims, CNI DEL: veths, IPs, hostPort rules, netns), then the node's
// processes, then whatever a crash could still have left (shims, cgroups,
// mounts, netns, the bridge, netfilter rules), and the host's sysctls last.
// The same code runs from stop() and, after a hard crash, from the reaper
// (teardown-cli.ts), reading the state the run recorded at start.
import { readFile, rm, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { NodeLayout } from './config.ts';
import { CriClient } from './cri.ts';
import {
  alive,
  cleanupIptables,
  deleteBridge,
  deleteNftTable,
  KUBE_PROXY_NFT_TABLES,
  killPid,
  NODE_NFT_TABLE,
  pidsWithArg,
  removeCgroups,
  releaseNetnsDir,
  removeNetns,
  restoreSysctls,
  unmountUnder,
  type SysctlValues,
} from './host.ts';

/** The node's processes, in the order teardown stops them (kubelet first). */
export const NODE_PROCESSES = ['kubelet', 'kube-proxy', 'coredns', 'containerd'] as const;
export type NodeProcessName = (typeof NODE_PROCESSES)[number];

/** What a run changed, recorded at start (before changing it) in `<dir>/state.json`. */
export interface NodeState {
  layout: NodeLayout;
  /** Sysctl values before the run. */
  sysctls: SysctlValues;
  /** CRI netns names that existed before the run (not ours to remove). */
  netnsBaseline: string[];
  /** Whether /run/netns was a mount point before the run. */
  netnsDirMounted: boolean;
  /** Process group ids of the node's processes, as they start. */
  pids: Partial<Record<NodeProcessName, number>>;
  /** The single-node lock this run holds. */
  lockFile: string;
}

export async function writeState(file: string, state: NodeState): Promise<void> {
  await writeFile(file, JSON.stringify(state, null, 2));
}

export async function readState(file: string): Promise<NodeState> {
  return JSON.parse(await readFile(file, 'utf8')) as NodeState;
}

/** Stops one of the node's processes; teardown calls it in NODE_PROCESSES order. */
export type StopProcess = (name: NodeProcessName) => Promise<void>;

/** SIGTERM to a recorded process group, SIGKILL after `graceMs`: for when no ManagedProcess exists (the reaper). */
export function stopByPid(state: NodeState, graceMs = 5000): StopProcess {
  return async (name) => {
    const pid = state.pids[name];
    if (!pid) return;
    killGroup(pid, 'SIGTERM');
    for (let waited = 0; waited < graceMs && (await alive(pid)); waited += 100) await sleep(100);
    killGroup(pid, 'SIGKILL');
    for (let i = 0; i < 50 && (await alive(pid)); i++) await sleep(100);
  };
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/**
 * Tears the node down; idempotent. Returns what needed attention (pods that
 * would not go, sysctls put back) for the caller's log; throws only if the
 * host could not be put back.
 */
export async function teardownNode(state: NodeState, stop: StopProcess): Promise<string[]> {
  const notes: string[] = [];
  const { layout } = state;
  await stop('kubelet');
  notes.push(...(await removeAllPods(layout.containerdSocket)));
  await stop('kube-proxy');
  for (const [family, table] of KUBE_PROXY_NFT_TABLES) await deleteNftTable(family, table);
  await stop('coredns');
  await stop('containerd');
  // Shims outlive containerd by design (they hold running containers); any
  // left was started by our containerd, so it carries our socket.
  for (const pid of await pidsWithArg(layout.containerdSocket)) {
    killPid(pid, 'SIGKILL');
    notes.push(`killed leftover containerd shim ${pid}`);
  }
  await removeCgroups(layout.cgroupRoot);
  const unmounted = await unmountUnder([layout.containerdState, layout.kubeletRoot, layout.dir]);
  if (unmounted.length) notes.push(`unmounted ${unmounted.length} leftover mounts`);
  const netns = await removeNetns(state.netnsBaseline);
  if (netns.length) notes.push(`removed leftover netns ${netns.join(', ')}`);
  await releaseNetnsDir(state.netnsDirMounted);
  await deleteBridge();
  await deleteNftTable('inet', NODE_NFT_TABLE);
  await cleanupIptables();
  notes.push(...(await restoreSysctls(state.sysctls)).map((s) => `sysctl restored: ${s}`));
  // containerd's per-run state (task bundles, sockets); its root, with the images, stays.
  await rm(layout.containerdState, { recursive: true, force: true, maxRetries: 3 });
  await releaseLock(state.lockFile);
  return notes;
}

/** Removes every pod sandbox through the CRI, if containerd still answers. */
async function removeAllPods(socket: string): Promise<string[]> {
  const cri = new CriClient(socket);
  try {
    await cri.version(1000);
  } catch {
    cri.close();
    return [];
  }
  try {
    return await cri.removeAllSandboxes();
  } catch (err) {
    return [`could not list pod sandboxes: ${(err as Error).message}`];
  } finally {
    cri.close();
  }
}

// --- the single-node lock ---------------------------------------------------------

/** One node per machine: it owns the bridge name, the node IP, the CNI netns names and host sysctls. */
export const LOCK_FILE = '/run/faultline-node.lock';

interface LockContent {
  pid: number;
  stateFile: string;
}

/**
 * Takes the node lock for this process. If a live process holds it, throws
 * naming it; if a dead one does (it was killed and its reaper did not finish),
 * finishes that run's teardown first.
 */
export async function acquireLock(stateFile: string, lockFile = LOCK_FILE): Promise<string[]> {
  const notes: string[] = [];
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(lockFile, JSON.stringify({ pid: process.pid, stateFile } satisfies LockContent), { flag: 'wx' });
      return notes;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const held = await readFile(lockFile, 'utf8')
      .then((t) => JSON.parse(t) as LockContent)
      .catch(() => undefined);
    if (held && (await alive(held.pid))) {
      throw new Error(`another Faultline node is running (pid ${held.pid}, ${lockFile}); stop it first (Ctrl-C in its terminal)`);
    }
    if (held) {
      const previous = await readState(held.stateFile).catch(() => undefined);
      if (previous) {
        notes.push(`cleaning up after a previous node run (pid ${held.pid}) that did not stop cleanly`);
        notes.push(...(await teardownNode(previous, stopByPid(previous))));
      }
    }
    await rm(lockFile, { force: true });
  }
  throw new Error(`cannot take the node lock ${lockFile}`);
}

async function releaseLock(lockFile: string): Promise<void> {
  const held = await readFile(lockFile, 'utf8')
    .then((t) => JSON.parse(t) as LockContent)
    .catch(() => undefined);
  // Ours, or a dead process's whose teardown this is.
  if (held && (held.pid === process.pid || !(await alive(held.pid)))) await rm(lockFile, { force: true });
}

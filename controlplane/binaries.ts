import { spawn } from 'node:child_process';
import { access, constants, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const hackDir = path.join(repoRoot, 'hack', 'controlplane');

/**
 * The cluster's tools hack/controlplane/build.sh builds: the API-only control
 * plane's four, then the node's. (It also builds the benchmarks' load
 * generator, open-loop: ensureOpenLoop.)
 */
export const TOOLS = [
  'kube-apiserver',
  'kubectl',
  'etcd',
  'toxiproxy-server',
  'kube-controller-manager',
  'kube-scheduler',
  'kube-proxy',
  'kubelet',
  'coredns',
] as const;
export type Tool = (typeof TOOLS)[number];

/** The pinned versions, from hack/controlplane/versions.env (the one place they live). */
export async function pinnedVersions(): Promise<Record<string, string>> {
  const text = await readFile(path.join(hackDir, 'versions.env'), 'utf8');
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z0-9_]+)=("?)([^"\s#]*)\2/.exec(line);
    if (m) out[m[1]!] = m[3]!;
  }
  return out;
}

/** Cache directory holding the binaries of the pinned versions (outside the repo). */
export async function binDir(): Promise<string> {
  const v = await pinnedVersions();
  const cache = process.env.FAULTLINE_BIN_CACHE ?? path.join(homedir(), '.cache', 'faultline', 'bin');
  return path.join(
    cache,
    `k8s-${v.KUBERNETES_VERSION}_etcd-${v.ETCD_VERSION}_toxiproxy-${v.TOXIPROXY_VERSION}_coredns-${v.COREDNS_VERSION}`,
  );
}

async function executable(file: string): Promise<boolean> {
  return access(file, constants.X_OK).then(
    () => true,
    () => false,
  );
}

async function missingIn(dir: string): Promise<Tool[]> {
  const present = await Promise.all(TOOLS.map((t) => executable(path.join(dir, t))));
  return TOOLS.filter((_, i) => !present[i]);
}

/** The tools not yet built for the pinned versions (so a caller can announce a cold build). */
export async function missingTools(): Promise<Tool[]> {
  return missingIn(await binDir());
}

/**
 * Runs hack/controlplane/build.sh, for `only` those binaries when given. Its
 * progress goes to stderr so a cold build is visible; a failure's error
 * carries the end of that output (why: no Go, no module proxy, ...).
 */
function runBuild(only?: readonly string[]): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const env = only ? { ...process.env, FAULTLINE_BINARIES: only.join(' ') } : process.env;
    const child = spawn('bash', [path.join(hackDir, 'build.sh')], { env, stdio: ['ignore', process.stderr, 'pipe'] });
    let tail = '';
    child.stderr.on('data', (chunk: Buffer) => {
      process.stderr.write(chunk);
      tail = (tail + chunk.toString('utf8')).slice(-2000);
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`hack/controlplane/build.sh${only ? ` (${only.join(' ')})` : ''} failed (exit ${code}):\n${tail.trimEnd()}`)),
    );
  });
}

/**
 * Absolute paths of the control-plane tools, building whatever is missing with
 * hack/controlplane/build.sh.
 */
export async function ensureBinaries(): Promise<Record<Tool, string>> {
  const dir = await binDir();
  const paths = Object.fromEntries(TOOLS.map((t) => [t, path.join(dir, t)])) as Record<Tool, string>;
  if ((await missingIn(dir)).length === 0) return paths;
  await runBuild();
  return paths;
}

let openLoop: Promise<string> | undefined;

/**
 * The benchmarks' load generator (hack/controlplane/open-loop, on vegeta),
 * built when missing or stale: build.sh compares the binary's version with a
 * hash of its sources. Checked once per process (a failed check is retried).
 */
export function ensureOpenLoop(): Promise<string> {
  openLoop ??= runBuild(['open-loop']).then(
    async () => path.join(await binDir(), 'open-loop'),
    (err: unknown) => {
      openLoop = undefined;
      throw err;
    },
  );
  return openLoop;
}

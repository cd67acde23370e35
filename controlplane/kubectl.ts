import { spawn } from 'node:child_process';

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Which kubectl, as whom, against what. */
export interface KubectlTarget {
  binary: string;
  kubeconfig: string;
  /**
   * kubectl's discovery cache. Per control plane, so runs on random ports do
   * not pile up under ~/.kube/cache.
   */
  cacheDir: string;
}

export interface KubectlOptions {
  /** Written to kubectl's stdin (for `-f -`). */
  input?: string;
  /** Kill kubectl after this long (default 60 s); the result then has code 124, like timeout(1). */
  timeoutMs?: number;
}

/**
 * Runs kubectl as a user would, with the given kubeconfig and nothing from
 * the caller's environment that could redirect it (KUBECONFIG, ~/.kube).
 * A non-zero exit is a result, not an exception: tests assert on denials.
 */
export function runKubectl(target: KubectlTarget, args: readonly string[], opts: KubectlOptions = {}): Promise<KubectlResult> {
  const env = { ...process.env, KUBECONFIG: target.kubeconfig };
  return new Promise((resolve, reject) => {
    const child = spawn(target.binary, [`--kubeconfig=${target.kubeconfig}`, `--cache-dir=${target.cacheDir}`, ...args], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: opts.timeoutMs ?? 60_000,
      killSignal: 'SIGKILL',
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal === 'SIGKILL' ? 124 : 128), stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

/** Throws with kubectl's stderr unless it exited 0; returns stdout. */
export function check(result: KubectlResult, what: string): string {
  if (result.code !== 0) throw new Error(`${what} failed (kubectl exit ${result.code}): ${result.stderr.trim() || result.stdout.trim()}`);
  return result.stdout;
}

// Helpers for the certs tests: temp dirs, the openssl CLI as an independent
// verifier, and running the real `faultline` binary.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../../common/log.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Node 24 from devDependencies: the system node may be too old for type stripping. */
export const NODE = join(REPO_ROOT, 'node_modules/.bin/node');

export const silent = createLogger('certs-test', 'silent');

/** A fresh temp dir per test; `cleanup` is safe to call in afterEach even if the test failed. */
export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'faultline-certs-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: readonly string[], env?: NodeJS.ProcessEnv, timeout = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd: REPO_ROOT, env: env ?? process.env, timeout, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err);
      resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
    });
  });
}

export function openssl(...args: string[]): Promise<Run> {
  return run('openssl', args);
}

/** `faultline ARGS` through bin/faultline.js, as a user runs it. */
export function faultline(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  // The CLI tests read its JSON log lines, so they must not inherit a muted level.
  return run(NODE, [join(REPO_ROOT, 'bin/faultline.js'), ...args], { ...process.env, FAULTLINE_LOG_LEVEL: 'info', ...env });
}

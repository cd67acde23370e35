// Small process helpers for the netns tests: run to completion, or keep a
// long-running child with its output captured and kill it by process group.

import { spawn, type ChildProcess } from 'node:child_process';

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export function exec(argv: readonly string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<Result> {
  const [file, ...args] = argv;
  return new Promise((resolve, reject) => {
    const child = spawn(file!, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

export async function execOk(argv: readonly string[], opts: Parameters<typeof exec>[1] = {}): Promise<Result> {
  const r = await exec(argv, opts);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r;
}

/** A long-running child in its own process group, output kept for assertions and failure reports. */
export class Proc {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number>;
  readonly name: string;

  constructor(name: string, argv: readonly string[], env: NodeJS.ProcessEnv) {
    this.name = name;
    const [file, ...args] = argv;
    this.child = spawn(file!, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => (this.stdout += d));
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => {
      this.child.on('error', (err) => {
        this.stderr += String(err);
        resolve(127);
      });
      this.child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGTERM the group, SIGKILL after `graceMs`; resolves once the child is gone. */
  async stop(graceMs = 3_000): Promise<void> {
    if (!this.running || this.child.pid === undefined) return;
    const pgid = this.child.pid;
    const signal = (s: NodeJS.Signals) => {
      try {
        process.kill(-pgid, s);
      } catch {
        // Already gone.
      }
    };
    signal('SIGTERM');
    const timer = setTimeout(() => signal('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

// One control-plane child process: its own process group, output to a log
// file in the control plane's dir, a graceful stop, and the log's tail for
// error messages (a bare "exited with code 1" helps nobody).
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { trackGroup, untrackGroup } from './reaper.ts';

export interface ProcessSpec {
  /** Short name used in messages ("etcd", "kube-apiserver", "webhook"). */
  name: string;
  command: string;
  args: readonly string[];
  /** stdout and stderr are appended here. */
  logFile: string;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class ManagedProcess {
  readonly name: string;
  readonly logFile: string;
  readonly pid: number;
  /** Settles when the process has exited, for whatever reason. */
  readonly exited: Promise<ExitStatus>;
  #child: ChildProcess;
  #status: ExitStatus | undefined;
  #stopRequested = false;

  private constructor(spec: ProcessSpec, child: ChildProcess) {
    this.name = spec.name;
    this.logFile = spec.logFile;
    this.pid = child.pid!;
    this.#child = child;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#status = { code, signal };
        untrackGroup(this.pid);
        resolve(this.#status);
      });
    });
  }

  static async start(spec: ProcessSpec): Promise<ManagedProcess> {
    const log = openSync(spec.logFile, 'a');
    let child: ChildProcess;
    try {
      // detached: a new session and process group (pgid = pid), so we can
      // signal the whole group and the terminal's Ctrl-C does not reach it.
      child = spawn(spec.command, spec.args, {
        detached: true,
        stdio: ['ignore', log, log],
      });
    } finally {
      closeSync(log);
    }
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) => reject(new Error(`cannot start ${spec.name} (${spec.command}): ${err.message}`)));
    });
    trackGroup(child.pid!);
    // The control plane's lifetime is managed explicitly (stop(), the
    // reaper); a forgotten child must not keep the event loop alive.
    child.unref();
    return new ManagedProcess(spec, child);
  }

  get running(): boolean {
    return this.#status === undefined;
  }

  /** True once stop() was called: an exit after that was asked for. */
  get stopRequested(): boolean {
    return this.#stopRequested;
  }

  /** SIGTERM to the process group, SIGKILL after `graceMs`; resolves once it has exited. */
  async stop(graceMs = 5000): Promise<void> {
    this.#stopRequested = true;
    if (!this.running) return;
    // While we wait for it, the child must keep the event loop alive.
    this.#child.ref();
    signalGroup(this.pid, 'SIGTERM');
    // A SIGSTOPped process (suspendWebhook) acts on SIGTERM only once continued.
    signalGroup(this.pid, 'SIGCONT');
    // Cancel the grace timer once the process is gone: a pending timer
    // would hold the event loop (and `faultline up`'s exit) for graceMs.
    const grace = new AbortController();
    const exited = await Promise.race([
      this.exited.then(() => true),
      sleep(graceMs, false, { signal: grace.signal }).catch(() => true),
    ]);
    grace.abort();
    if (!exited) {
      signalGroup(this.pid, 'SIGKILL');
      await this.exited;
    }
  }

  /** The last `lines` lines of the process's log, for error messages. */
  async logTail(lines = 25): Promise<string> {
    const text = await readFile(this.logFile, 'utf8').catch(() => '');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  }

  /** "exited with code 1" / "killed by SIGKILL" / "running". */
  describeStatus(): string {
    const s = this.#status;
    if (!s) return 'running';
    return s.signal ? `killed by ${s.signal}` : `exited with code ${s.code}`;
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    // ESRCH: the group is already gone, which is what we wanted.
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

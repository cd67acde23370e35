// Runs toxiproxy-server as a child on 127.0.0.1 and keeps it running: a crash
// is logged, counted, and followed by a restart with exponential backoff. While
// it is down `up` is false and the listeners take the raw path (fail open);
// every time it comes (back) up, `onUp` lets the reconciler restore all proxies.

import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Backoff } from '../common/backoff.ts';
import type { Logger } from '../common/log.ts';
import type { Metrics } from './metrics.ts';
import { ToxiproxyHttpClient } from './toxiproxy-http.ts';

export interface SupervisorOptions {
  bin: string;
  port: number;
  log: Logger;
  metrics: Metrics;
  onUp: () => void;
  onDown: () => void;
}

/** Up this long and a crash is news again: the backoff starts over. */
const STABLE_MS = 10_000;
const READY_TIMEOUT_MS = 10_000;

export class ToxiproxySupervisor {
  readonly apiUrl: string;
  up = false;
  private readonly opts: SupervisorOptions;
  private child: ChildProcess | undefined;
  private stopped = false;
  private readonly backoff = new Backoff(100, 5_000);
  /** Polls /version while toxiproxy-server starts (node:http, not fetch(): toxiproxy-http.ts). */
  private readonly probe = new ToxiproxyHttpClient({ timeoutMs: 1_000 });
  private restartTimer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private starts = 0;

  constructor(opts: SupervisorOptions) {
    this.opts = opts;
    this.apiUrl = `http://127.0.0.1:${opts.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    if (this.stopped) return;
    const { bin, port, log } = this.opts;
    this.starts++;
    this.startedAt = Date.now();
    // LOG_LEVEL=warn: toxiproxy logs every API call and connection at info/debug.
    const child = spawn(bin, ['-host', '127.0.0.1', '-port', String(port)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LOG_LEVEL: process.env.TOXIPROXY_LOG_LEVEL ?? 'warn' },
    });
    this.child = child;
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream! }).on('line', (line) => log.debug({ toxiproxy: line }, 'toxiproxy-server'));
    }
    child.on('error', (err) => {
      if (child.pid !== undefined) return; // an error after spawning also ends in 'exit'
      log.error({ err: err.message, bin }, 'cannot run toxiproxy-server; TCP faults are disabled (fail open)');
      if (this.child === child) this.child = undefined;
    });
    child.on('exit', (code, signal) => this.onExit(child, code, signal));
    void this.waitReady(child);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.probe.close();
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 2_000).unref();
    });
  }

  private async waitReady(child: ChildProcess): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (this.child === child && child.exitCode === null && Date.now() < deadline) {
      try {
        // Throws until it answers 2xx.
        await this.probe.getText(`${this.apiUrl}/version`);
        if (this.child === child && child.exitCode === null) {
          this.up = true;
          this.opts.log.info({ pid: child.pid, api: this.apiUrl, start: this.starts }, 'toxiproxy-server up');
          this.opts.onUp();
          return;
        }
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    if (this.child === child && child.exitCode === null) {
      this.opts.log.error({ pid: child.pid }, 'toxiproxy-server did not answer in time; restarting it');
      child.kill('SIGKILL');
    }
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child !== child) return;
    const wasUp = this.up;
    this.up = false;
    this.child = undefined;
    if (wasUp) this.opts.onDown();
    if (this.stopped) return;
    if (Date.now() - this.startedAt > STABLE_MS) this.backoff.reset();
    const restartInMs = this.backoff.next();
    this.opts.log.warn({ code, signal, restartInMs }, 'toxiproxy-server exited; TCP faults fail open until it is back');
    this.opts.metrics.toxiproxyRestart();
    this.restartTimer = setTimeout(() => this.start(), restartInMs);
  }
}

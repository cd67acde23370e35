// A memory cgroup of our own, below the one this process runs in, so a
// process tree can be measured (and capped) as the kubelet's container cgroup
// counts it: anonymous memory, kernel memory and the page cache it faults in,
// with OOM kills counted. The enclosing cgroup is only read, never written.
// cgroup v1 (memory controller mounted on its own, as on this machine's
// hybrid layout) and v2 (unified) are both handled.

import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const V1_ROOT = '/sys/fs/cgroup/memory';
const V2_ROOT = '/sys/fs/cgroup';

let counter = 0;

/** Our own memory cgroup's directory and its version, from /proc/self/cgroup. */
function ownMemoryCgroup(): { dir: string; version: 1 | 2 } {
  const lines = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  const v1 = lines.map((l) => l.split(':')).find((f) => f[1]?.split(',').includes('memory'));
  if (v1 && existsSync(V1_ROOT)) return { dir: join(V1_ROOT, v1[2] ?? '/'), version: 1 };
  const v2 = lines.map((l) => l.split(':')).find((f) => f[0] === '0' && f[1] === '');
  if (v2 && existsSync(join(V2_ROOT, 'cgroup.controllers'))) return { dir: join(V2_ROOT, v2[2] ?? '/'), version: 2 };
  throw new Error('no memory cgroup controller found (neither cgroup v1 memory nor cgroup v2)');
}

export class MemoryCgroup {
  readonly dir: string;
  private readonly version: 1 | 2;

  /** `limitBytes`: the container's memory limit; undefined = unlimited (measure only). */
  constructor(limitBytes?: number) {
    const own = ownMemoryCgroup();
    this.version = own.version;
    this.dir = join(own.dir, `faultline-measure-${process.pid}-${counter++}`);
    mkdirSync(this.dir);
    if (limitBytes !== undefined) this.write(this.version === 1 ? 'memory.limit_in_bytes' : 'memory.max', String(limitBytes));
  }

  /** argv that joins this cgroup, then execs `argv`: everything it starts is counted here. */
  wrap(argv: readonly string[]): string[] {
    return ['sh', '-c', `echo $$ > ${join(this.dir, 'cgroup.procs')} && exec "$@"`, 'sh', ...argv];
  }

  /** Highest usage since creation: memory.max_usage_in_bytes (v1) or memory.peak (v2, kernel >= 5.19). */
  peakBytes(): number {
    return Number(this.read(this.version === 1 ? 'memory.max_usage_in_bytes' : 'memory.peak'));
  }

  /** Processes the kernel OOM-killed in this cgroup. */
  oomKills(): number {
    const text = this.read(this.version === 1 ? 'memory.oom_control' : 'memory.events');
    return Number(/^oom_kill (\d+)$/m.exec(text)?.[1] ?? 0);
  }

  /**
   * SIGKILLs whatever still runs in the cgroup (a wrapper killed on timeout
   * leaves its children here), waits for it to empty, and removes it.
   * Charged page cache moves to the parent.
   */
  async remove(): Promise<void> {
    if (!existsSync(this.dir)) return;
    const deadline = Date.now() + 10_000;
    for (;;) {
      const pids = this.read('cgroup.procs').split('\n').filter(Boolean).map(Number);
      if (pids.length === 0) break;
      if (Date.now() > deadline) throw new Error(`processes ${pids.join(', ')} would not leave ${this.dir}`);
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    rmdirSync(this.dir);
  }

  private read(file: string): string {
    return readFileSync(join(this.dir, file), 'utf8').trim();
  }

  private write(file: string, value: string): void {
    writeFileSync(join(this.dir, file), value);
  }
}

export const MiB = 1024 * 1024;

/** A Kubernetes memory quantity in binary units ("96Mi", "1Gi") as bytes. */
export function quantityBytes(quantity: string): number {
  const m = /^(\d+)(Ki|Mi|Gi)$/.exec(quantity);
  if (!m) throw new Error(`expected a memory quantity like 96Mi, got '${quantity}'`);
  return Number(m[1]) * { Ki: 1024, Mi: MiB, Gi: 1024 * MiB }[m[2] as 'Ki' | 'Mi' | 'Gi'];
}

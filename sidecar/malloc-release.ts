// Gives the C heap's free pages back to the kernel, every interval.
//
// V8's optimizing compilers take their working memory (zones) from malloc.
// The first HTTP-path requests make the proxy tier up undici's llhttp
// WebAssembly and its own hot functions; heaptrack put 15 MB of that burst in
// one Turboshaft phase compiling llhttp. glibc keeps freed chunks inside its
// arenas, so a proxy that had served one burst held 13-21 MB of free malloc
// memory from then on, resident, beside 4-5 MB in use (mallinfo2 over gdb,
// 15 s after the load, RSS staying at 98-106 MB). malloc_trim(0) hands those
// pages back (madvise DONTNEED per free chunk); Node has no call for it, so
// koffi reaches glibc's, as original-destination.ts does for getsockopt.
// Envoy does the same for tcmalloc: ReleaseMemoryToSystem on an interval.

import { createRequire } from 'node:module';

/** The process's C heap, as glibc's malloc keeps it. */
export interface CHeap {
  /** Bytes free inside malloc's arenas (mallinfo2's fordblks): resident or not, malloc cannot tell. */
  freeBytes(): number;
  /** malloc_trim(0): true when any page went back to the kernel. */
  trim(): boolean;
}

/**
 * glibc's heap, or undefined where the process's libc lacks mallinfo2 or
 * malloc_trim (musl, glibc before 2.33), or koffi has no build for the
 * platform: there is then nothing to release through, and nothing is.
 */
export function glibcHeap(): CHeap | undefined {
  try {
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    // null: the symbols already in the process (Node links libc).
    const libc = koffi.load(null);
    const size = 'size_t';
    const info = koffi.struct({
      arena: size, ordblks: size, smblks: size, hblks: size, hblkhd: size,
      usmblks: size, fsmblks: size, uordblks: size, fordblks: size, keepcost: size,
    });
    const mallinfo2 = libc.func('mallinfo2', info, []) as () => { fordblks: number | bigint };
    const mallocTrim = libc.func('int malloc_trim(size_t pad)') as (pad: number) => number;
    return { freeBytes: () => Number(mallinfo2().fordblks), trim: () => mallocTrim(0) === 1 };
  } catch {
    return undefined;
  }
}

export interface MallocReleaseStats {
  /** Checks run, trims asked for, the RSS those trims gave back (bytes), and the time they took (ms, on the event loop). */
  checks: number;
  releases: number;
  releasedBytes: number;
  releaseMs: number;
  /** mallinfo2's free bytes at the last check. */
  freeBytes: number;
}

export interface MallocReleaseOptions {
  heap: CHeap;
  intervalMs: number;
  /** Free bytes below which a check leaves the heap alone. */
  thresholdBytes: number;
  /** The process's resident set, read before and after a trim (default process.memoryUsage.rss). */
  rss?: () => number;
  onError?: (err: unknown) => void;
}

/**
 * Checks the heap every `intervalMs` and trims it when it holds at least
 * `thresholdBytes` free. mallinfo2 cannot tell free pages already given back
 * from ones touched again since, so a heap that stays above the threshold is
 * trimmed on every check: a trim with nothing left to return costs one
 * madvise per free chunk (bench numbers in the proxy image's notes).
 */
export class MallocRelease {
  readonly stats: MallocReleaseStats = { checks: 0, releases: 0, releasedBytes: 0, releaseMs: 0, freeBytes: 0 };
  private readonly o: MallocReleaseOptions;
  private timer: NodeJS.Timeout | undefined;

  constructor(o: MallocReleaseOptions) {
    if (!(o.intervalMs > 0)) throw new RangeError(`malloc release interval must be above 0 ms, got ${o.intervalMs}`);
    this.o = o;
  }

  start(): this {
    // unref: a pending check never keeps the proxy from exiting.
    this.timer ??= setInterval(() => this.check(), this.o.intervalMs).unref();
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One check, now: trims when the heap holds at least the threshold free. */
  check(): void {
    const { heap, thresholdBytes, rss = () => process.memoryUsage.rss() } = this.o;
    try {
      this.stats.checks++;
      this.stats.freeBytes = heap.freeBytes();
      if (this.stats.freeBytes < thresholdBytes) return;
      const before = rss();
      const started = performance.now();
      heap.trim();
      this.stats.releaseMs += performance.now() - started;
      this.stats.releases++;
      this.stats.releasedBytes += Math.max(0, before - rss());
    } catch (err) {
      // A libc that fails here would fail on every check: stop asking.
      this.stop();
      this.o.onError?.(err);
    }
  }
}

// Gives the C heap's free pages back to the kernel, every interval.
//
// V8's optimizing compilers take their working memory (zones) from malloc.
// The first HTTP-path requests make the proxy optimize its hot functions, and
// until the image ran WebAssembly on Liftoff alone (--liftoff-only:
// images/proxy.Dockerfile) tier up undici's llhttp too; heaptrack put 15 MB
// of that burst in one Turboshaft phase compiling llhttp. glibc keeps freed
// chunks inside its arenas, so a proxy that had served one burst held
// 13-21 MB of free malloc memory from then on, resident, beside 4-5 MB in use
// (mallinfo2 over gdb, 15 s after the load, RSS staying at 98-106 MB).
// malloc_trim(0) hands those pages back (madvise DONTNEED per free chunk);
// Node has no call for it, so koffi reaches glibc's, as
// original-destination.ts does for getsockopt. Envoy does the same for
// tcmalloc: ReleaseMemoryToSystem on an interval.
// npm run bench:malloc-release (5 interleaved rounds, 2026-11-26): RSS 11 s
// after a 12 s burst 103.7 MB without, 86.7 MB with (0.82-0.92x per round);
// the high-water mark unchanged (0.98-1.05x), since the burst is still one
// burst; 1.8 ms on the event loop per trim; proxy CPU per request within this
// machine's round-to-round spread (0.58-1.52x over the 8 rounds of this and an
// earlier 3-round run, median 1.0). Again on 2026-11-27, with the image's
// --liftoff-only and 32 KB MALLOC_MMAP_THRESHOLD_, which shrink what a burst
// leaves behind (2 rounds): 89.0 MB without, 83.9 MB with (0.935-0.944x);
// 0.69 ms per trim. Smaller, and still worth an interval's check.

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

/**
 * glibcHeap(), bound at its first call rather than now: koffi's native module
 * (0.7 MB of shared library, 1-2 MB of RSS in all) loads with the first check,
 * or with the first captured connection's getsockopt, whichever comes first.
 * Throws on use where there is no glibc heap to bind.
 */
export function lazyGlibcHeap(): CHeap {
  let heap: CHeap | undefined;
  const bound = (): CHeap => {
    heap ??= glibcHeap();
    if (!heap) throw new Error("this libc has no mallinfo2/malloc_trim (not glibc >= 2.33?): free C-heap memory stays with the process");
    return heap;
  };
  return { freeBytes: () => bound().freeBytes(), trim: () => bound().trim() };
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
 * trimmed on every check: a trim with nothing left to return still costs one
 * madvise per free chunk (0.9 ms for 50 MB free in 800 holes, against 12 ms
 * for the first trim of the same heap).
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

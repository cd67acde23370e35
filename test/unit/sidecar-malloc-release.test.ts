// sidecar/malloc-release.ts: the checks and trims against a scripted heap, and
// glibc's own malloc_trim giving back pages a freed allocation left resident,
// in a child Node process (its heap is the one measured, not mocha's).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { glibcHeap, lazyGlibcHeap, MallocRelease, type CHeap } from '../../sidecar/malloc-release.ts';
import { repoRoot } from '../support/sidecar-harness.ts';

const MB = 1024 * 1024;

/** A heap whose free bytes the test sets; a trim gives back `releases` bytes of RSS. */
function scriptedHeap(): CHeap & { free: number; trims: number; rss: number; releases: number; fail?: Error } {
  const h = {
    free: 0,
    trims: 0,
    rss: 100 * MB,
    releases: 0,
    fail: undefined as Error | undefined,
    freeBytes: () => {
      if (h.fail) throw h.fail;
      return h.free;
    },
    trim: () => {
      h.trims++;
      h.rss -= h.releases;
      return h.releases > 0;
    },
  };
  return h;
}

describe('malloc release (sidecar/malloc-release.ts)', () => {
  it('trims only a heap holding at least the threshold free, and counts the RSS each trim gave back', () => {
    const heap = scriptedHeap();
    const r = new MallocRelease({ heap, intervalMs: 1000, thresholdBytes: 4 * MB, rss: () => heap.rss });
    heap.free = 4 * MB - 1;
    r.check();
    assert.equal(heap.trims, 0);
    heap.free = 4 * MB;
    heap.releases = 3 * MB;
    r.check();
    assert.equal(heap.trims, 1);
    heap.free = 20 * MB;
    heap.releases = 0; // nothing resident left to give: a trim still runs, and counts 0 bytes
    r.check();
    const { releaseMs, ...counts } = r.stats;
    assert.deepEqual(counts, { checks: 3, releases: 2, releasedBytes: 3 * MB, freeBytes: 20 * MB });
    assert.ok(releaseMs >= 0 && releaseMs < 1000, `${releaseMs} ms in two scripted trims`);
  });

  it('checks on its interval once started, and never after stop', async () => {
    const heap = scriptedHeap();
    heap.free = 8 * MB;
    const r = new MallocRelease({ heap, intervalMs: 10, thresholdBytes: MB, rss: () => heap.rss }).start();
    try {
      await new Promise((resolve) => setTimeout(resolve, 150));
      assert.ok(r.stats.checks >= 2, `${r.stats.checks} checks in 150 ms at a 10 ms interval`);
      assert.equal(heap.trims, r.stats.checks);
    } finally {
      r.stop();
    }
    const after = r.stats.checks;
    await new Promise((resolve) => setTimeout(resolve, 40));
    assert.equal(r.stats.checks, after);
  });

  it('stops on the first failing libc call and reports it, instead of failing every interval', async () => {
    const heap = scriptedHeap();
    heap.fail = new Error('mallinfo2 went away');
    const errors: unknown[] = [];
    const r = new MallocRelease({ heap, intervalMs: 5, thresholdBytes: MB, onError: (e) => errors.push(e) }).start();
    await new Promise((resolve) => setTimeout(resolve, 50));
    r.stop();
    assert.equal(errors.length, 1);
    assert.equal(r.stats.checks, 1);
    assert.equal(heap.trims, 0);
  });

  it('refuses an interval that is not a positive number of milliseconds', () => {
    const heap = scriptedHeap();
    for (const intervalMs of [0, -1, Number.NaN])
      assert.throws(() => new MallocRelease({ heap, intervalMs, thresholdBytes: MB }), /interval must be above 0 ms/);
  });

  it("glibc's malloc_trim gives back the pages of freed allocations the arena kept resident", function () {
    this.timeout(30_000);
    // glibc is this machine's libc and the images' (Debian): the heap must be there.
    assert.ok(glibcHeap(), 'mallinfo2/malloc_trim not found in this process');
    assert.ok(glibcHeap(), 'a second binding of the same functions');
    const lazy = lazyGlibcHeap();
    assert.ok(Number.isInteger(lazy.freeBytes()) && lazy.freeBytes() >= 0);
    // 64 KiB buffers come from the arena (below the 128 KiB mmap threshold). Every
    // other one is freed, so the holes cannot merge into the top chunk and go back
    // on their own: only a trim returns them.
    const child = `
      const { glibcHeap } = await import(${JSON.stringify(path.join(repoRoot, 'sidecar', 'malloc-release.ts'))});
      const heap = glibcHeap();
      let keep = [];
      for (let i = 0; i < 1600; i++) keep.push(Buffer.allocUnsafeSlow(64 * 1024).fill(1));
      keep = keep.filter((_, i) => i % 2 === 1);
      gc(); gc();
      await new Promise((r) => setTimeout(r, 200));
      const free = heap.freeBytes(), before = process.memoryUsage.rss();
      const trimmed = heap.trim();
      const after = process.memoryUsage.rss();
      console.log(JSON.stringify({ free, before, after, trimmed, kept: keep.length }));`;
    const node = path.join(repoRoot, 'node_modules', '.bin', 'node');
    const r = spawnSync(node, ['--expose-gc', '--input-type=module', '-e', child], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const m = JSON.parse(r.stdout) as { free: number; before: number; after: number; trimmed: boolean; kept: number };
    assert.equal(m.kept, 800);
    assert.ok(m.free >= 40 * MB, `${(m.free / MB).toFixed(1)} MB free after freeing 50 MB`);
    assert.equal(m.trimmed, true);
    assert.ok(m.before - m.after >= 30 * MB, `the trim gave back ${((m.before - m.after) / MB).toFixed(1)} MB of RSS`);
  });
});

// The reconciler's work queue and the expiry timer: the two pieces every
// "ends on its own" and "converges eventually" promise rests on.
import assert from 'node:assert/strict';
import { MAX_TIMER_MS, runAt } from '../../common/timer.ts';
import { WorkQueue } from '../../kube/work-queue.ts';

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

describe('common: runAt', () => {
  it('fires once the clock reaches the instant, asynchronously even when it has passed', async () => {
    const fired: string[] = [];
    runAt(Date.now() - 1_000, () => fired.push('past'));
    assert.equal(fired.length, 0, 'never synchronous');
    runAt(Date.now() + 30, () => fired.push('soon'));
    await tick(5);
    assert.deepEqual(fired, ['past']);
    await tick(60);
    assert.deepEqual(fired, ['past', 'soon']);
  });

  it('re-arms a timer that fires early by the injected clock, and waits beyond setTimeout\'s ceiling in steps', async () => {
    let clock = 0;
    const fired: number[] = [];
    // The instant is one ms ahead by this clock whenever the real timer fires, until the clock is moved.
    runAt(1, () => fired.push(clock), () => clock);
    await tick(20);
    assert.equal(fired.length, 0, 'not before the injected clock says so');
    clock = 1;
    await tick(20);
    assert.deepEqual(fired, [1]);
    // Far in the future: armed for at most MAX_TIMER_MS (Node would fire at once otherwise), never early.
    const far = runAt(Date.now() + 10 * MAX_TIMER_MS, () => fired.push(-1));
    await tick(20);
    far.cancel();
    assert.deepEqual(fired, [1]);
  });

  it('cancel stops it', async () => {
    let fired = false;
    runAt(Date.now() + 10, () => (fired = true)).cancel();
    await tick(40);
    assert.equal(fired, false);
  });
});

describe('webhook: WorkQueue', () => {
  it('processes a key added many times before it runs once, and never the same key twice at once', async () => {
    const runs: string[] = [];
    let running = 0;
    let maxSameKey = 0;
    const q = new WorkQueue(async (key) => {
      running++;
      maxSameKey = Math.max(maxSameKey, running);
      runs.push(key);
      await tick(20);
      running--;
    }, () => undefined, 1);
    q.add('a');
    q.add('b');
    q.add('b');
    q.add('b');
    await tick(5);
    q.add('a'); // while a is in flight: runs again afterwards, once
    q.add('a');
    await tick(120);
    assert.deepEqual(runs, ['a', 'b', 'a']);
    assert.equal(maxSameKey, 1);
    q.stop();
  });

  it('runs up to `concurrency` keys in parallel', async () => {
    let running = 0;
    let peak = 0;
    const q = new WorkQueue(async () => {
      peak = Math.max(peak, ++running);
      await tick(20);
      running--;
    }, () => undefined, 2);
    for (const k of ['a', 'b', 'c', 'd']) q.add(k);
    await tick(80);
    assert.equal(peak, 2);
    q.stop();
  });

  it('retries a failing key with backoff, reports every failure, and stops retrying on stop()', async () => {
    const attempts: number[] = [];
    const errors: string[] = [];
    const t0 = performance.now();
    const q = new WorkQueue(async () => {
      attempts.push(performance.now() - t0);
      if (attempts.length < 3) throw new Error(`fail ${attempts.length}`);
    }, (key, err) => errors.push(`${key}: ${(err as Error).message}`));
    q.add('p');
    for (let i = 0; i < 100 && attempts.length < 3; i++) await tick(20);
    assert.deepEqual(errors, ['p: fail 1', 'p: fail 2']);
    assert.equal(attempts.length, 3);
    assert.ok(attempts[1]! - attempts[0]! >= 50, `first retry after a backoff, got ${attempts[1]! - attempts[0]!} ms`);
    // The per-key backoff doubles: the second retry waits at least the first's base (100 ms) again.
    assert.ok(attempts[2]! - attempts[1]! >= 100, `second retry after a longer backoff, got ${attempts[2]! - attempts[1]!} ms`);

    let calls = 0;
    const counting = new WorkQueue(async () => {
      calls++;
      throw new Error('always');
    }, () => undefined);
    counting.add('x');
    await tick(5);
    counting.stop();
    await tick(400);
    assert.equal(calls, 1, 'no retry after stop()');
    counting.add('y');
    await tick(5);
    assert.equal(calls, 1, 'a stopped queue takes no new keys');
    q.stop();
  });
});

// Leader election decisions: pure functions over the observed Lease and the local clock.
import assert from 'node:assert/strict';
import { decideLease, DEFAULT_TIMING, mustStepDown, observe, type LeaseRecord } from '../../kube/leader.ts';

const record = (holder: string, resourceVersion = '1', leaseDurationSeconds = 15, transitions = 0): LeaseRecord => ({ holder, leaseDurationSeconds, transitions, resourceVersion });

describe('admission: leader election', () => {
  it('creates a missing lease', () => {
    assert.deepEqual(decideLease({ record: undefined, observedAt: 0 }, 'me', 1000), { action: 'create' });
  });

  it('renews its own lease', () => {
    assert.deepEqual(decideLease({ record: record('me'), observedAt: 0 }, 'me', 60_000), { action: 'renew' });
  });

  it('follows a live holder until leaseDuration after the record last changed, then takes over', () => {
    const observed = { record: record('other', '7', 15, 3), observedAt: 10_000 };
    assert.deepEqual(decideLease(observed, 'me', 24_999), { action: 'follow', holder: 'other', expiresAt: 25_000 });
    assert.deepEqual(decideLease(observed, 'me', 25_000), { action: 'acquire', transitions: 4 });
  });

  it('takes a released lease (empty holder) at once', () => {
    assert.deepEqual(decideLease({ record: record('', '9', 1, 2), observedAt: 5_000 }, 'me', 5_001), { action: 'acquire', transitions: 3 });
  });

  it('measures expiry on the local clock: a renewal (new resourceVersion) restarts it, a re-read does not', () => {
    const first = observe(undefined, record('other', '1'), 1_000);
    assert.equal(observe(first, record('other', '1'), 9_000), first, 'same version: the clock keeps running');
    const renewed = observe(first, record('other', '2'), 9_000);
    assert.equal(renewed.observedAt, 9_000);
    assert.equal(decideLease(renewed, 'me', 20_000).action, 'follow', 'the holder renewed at 9 s: not expired at 20 s');
    assert.equal(decideLease(first, 'me', 20_000).action, 'acquire', 'without the renewal it would have expired at 16 s');
  });

  it('a leader steps down once it could not renew for renewDeadline', () => {
    assert.equal(mustStepDown(100_000, 100_000 + DEFAULT_TIMING.renewDeadlineMs - 1, DEFAULT_TIMING), false);
    assert.equal(mustStepDown(100_000, 100_000 + DEFAULT_TIMING.renewDeadlineMs, DEFAULT_TIMING), true);
    assert.ok(DEFAULT_TIMING.renewDeadlineMs < DEFAULT_TIMING.leaseDurationMs, 'steps down before anyone else may take over');
  });
});

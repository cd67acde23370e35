import assert from 'node:assert/strict';
import type { PlannedIoFault } from '../../contract/plans.ts';
import { topMountType } from '../../pod-setup/io/mounts.ts';
import { compileRules, decideIoCall, relativeGlob } from '../../pod-setup/io/io-rules.ts';

const fault = (over: Partial<PlannedIoFault>): PlannedIoFault => ({
  chaosId: 'shop/io',
  expiresAt: 2_000,
  volumePath: '/data',
  path: '**',
  methods: ['read'],
  errno: 'EIO',
  delayMs: 0,
  percent: 100,
  ...over,
});

describe('init: IO fault rules', () => {
  it('accepts globs relative to the volume or as the app sees them', () => {
    assert.equal(relativeGlob('/data', '/data/logs/*.log'), 'logs/*.log');
    assert.equal(relativeGlob('/data', 'logs/*.log'), 'logs/*.log');
    assert.equal(relativeGlob('/data', '/**'), '**');
  });

  it('matches method and path, answers with a negative errno, and adds up delays', () => {
    const rules = compileRules([
      fault({ path: '/data/db/**', errno: 'EIO', delayMs: 10 }),
      fault({ path: '**/*.wal', errno: 'ENOSPC', delayMs: 5 }),
    ]);
    assert.deepEqual(decideIoCall(rules, 'read', '/db/x.wal', 1_000), { delayMs: 15, errno: -5 });
    assert.deepEqual(decideIoCall(rules, 'read', '/logs/x.wal', 1_000), { delayMs: 5, errno: -28 });
    assert.equal(decideIoCall(rules, 'write', '/db/x.wal', 1_000), undefined);
    assert.equal(decideIoCall(rules, 'read', '/other', 1_000), undefined);
    assert.deepEqual(decideIoCall(rules, 'read', '/db/.hidden', 1_000), { delayMs: 10, errno: -5 });
  });

  it('rolls each rule\'s percent and goes inert at expiresAt', () => {
    const rules = compileRules([fault({ percent: 30 })]);
    assert.ok(decideIoCall(rules, 'read', '/f', 1_000, () => 0.29));
    assert.equal(decideIoCall(rules, 'read', '/f', 1_000, () => 0.3), undefined);
    assert.equal(decideIoCall(rules, 'read', '/f', 2_000, () => 0), undefined);
  });

  it('supports delay-only rules', () => {
    const { errno: _ignored, ...noErrno } = fault({ delayMs: 50 });
    assert.deepEqual(decideIoCall(compileRules([noErrno]), 'read', '/f', 0), { delayMs: 50 });
  });
});

describe('init: stale FUSE layer detection', () => {
  it('reads the topmost mount type of a path from mountinfo', () => {
    const info = [
      '43 27 0:39 / /data rw,relatime - tmpfs tmpfs rw',
      '46 44 0:40 / /state/fuse/0 rw,nosuid - fuse.faultline faultline:/data rw,user_id=0',
      '47 43 0:40 / /data rw,nosuid,nodev,relatime - fuse.faultline faultline:/data rw,user_id=0',
      '50 27 0:41 / /data/sub rw shared:5 - ext4 /dev/sda rw',
    ].join('\n');
    assert.equal(topMountType(info, '/data'), 'fuse.faultline');
    assert.equal(topMountType(info, '/data/sub'), 'ext4');
    assert.equal(topMountType(info, '/other'), undefined);
  });
});

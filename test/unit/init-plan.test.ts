import assert from 'node:assert/strict';
import { missingCapabilities, parseCapEff } from '../../pod-setup/capabilities.ts';
import { formatOffset } from '../../contract/time-offset.ts';
import { decodeInitPlan } from '../../contract/codec.ts';

const wiring = { proxyUid: 16337, capture: { inboundPort: 16006, outboundPort: 16001 } };

describe('init: plan parsing', () => {
  it('accepts a full plan and fills the documented defaults', () => {
    const plan = decodeInitPlan(
      JSON.stringify({
        version: '0.1.0',
        wiring,
        kernel: {
          network: { chaosId: 'a/b', expiresAt: 5, loss: { percent: 5 } },
          io: [{ chaosId: 'a/c', expiresAt: 5, volumePath: '/data/', errno: 'EIO', percent: 10 }],
          time: { chaosId: 'a/d', expiresAt: 5, offsetMs: -7_200_000 },
        },
      }),
    );
    assert.equal(plan.kernel.network?.device, 'eth0');
    assert.deepEqual(plan.kernel.network?.loss, { percent: 5, correlation: 0 });
    assert.equal(plan.kernel.io[0]?.volumePath, '/data');
    // The API's default (policies/defaults.ts): every path under the volume.
    assert.equal(plan.kernel.io[0]?.path, '/data/**');
    assert.equal(plan.kernel.io[0]?.methods.length, 11);
    assert.deepEqual(plan.kernel.time?.containers, []);
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['not JSON', '{', /FAULTLINE_PLAN is not valid JSON/],
    ['no wiring', { version: 'x' }, /wiring: Required value/],
    ['no capture', { version: 'x', wiring: { proxyUid: 16337 } }, /wiring\.capture: Required value/],
    ['port as string', { version: 'x', wiring: { ...wiring, capture: { inboundPort: '16006', outboundPort: 16001 } } }, /wiring\.capture\.inboundPort: Invalid value: "16006": must be of type integer/],
    ['loss over 100', { version: 'x', wiring, kernel: { network: { chaosId: 'a', expiresAt: 1, loss: { percent: 120 } } } }, /kernel\.network\.loss\.percent: Invalid value: 120: must be at most 100/],
    ['quote in device', { version: 'x', wiring, kernel: { network: { chaosId: 'a', expiresAt: 1, device: 'eth0"; flush ruleset' } } }, /kernel\.network\.device: Invalid value: .*must be an interface name/],
    ['unknown errno', { version: 'x', wiring, kernel: { io: [{ chaosId: 'a', expiresAt: 1, volumePath: '/d', errno: 'EWHAT' }] } }, /kernel\.io\[0\]\.errno: Unsupported value: "EWHAT": supported values: "EIO"/],
    ['unknown method', { version: 'x', wiring, kernel: { io: [{ chaosId: 'a', expiresAt: 1, volumePath: '/d', errno: 'EIO', methods: ['chmod'] }] } }, /kernel\.io\[0\]\.methods\[0\]: Unsupported value: "chmod": supported values: "read"/],
    ['io fault that does nothing', { version: 'x', wiring, kernel: { io: [{ chaosId: 'a', expiresAt: 1, volumePath: '/d' }] } }, /needs an errno, a delayMs, or both/],
    ['relative volume', { version: 'x', wiring, kernel: { io: [{ chaosId: 'a', expiresAt: 1, volumePath: 'd', errno: 'EIO' }] } }, /kernel\.io\[0\]\.volumePath: Invalid value: "d": must be an absolute path/],
  ];
  for (const [name, input, message] of bad) {
    it(`rejects ${name} with a message naming the field`, () => {
      assert.throws(() => decodeInitPlan(typeof input === 'string' ? input : JSON.stringify(input)), message);
    });
  }
});

describe('init: capabilities', () => {
  it('reads CapEff and names what is missing', () => {
    const status = 'Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t00000000a80425fb\n';
    const eff = parseCapEff(status);
    assert.equal(eff, 0xa80425fbn);
    // Docker's default set: no NET_ADMIN, no SYS_ADMIN, but NET_RAW and MKNOD.
    assert.deepEqual(missingCapabilities(eff, ['NET_ADMIN', 'NET_RAW', 'SYS_ADMIN', 'MKNOD']), ['NET_ADMIN', 'SYS_ADMIN']);
    assert.deepEqual(missingCapabilities(0x1ffffffffffn, ['NET_ADMIN', 'SYS_ADMIN']), []);
  });
});

describe('init: libfaketime offset syntax', () => {
  it('writes signed seconds, keeping milliseconds', () => {
    assert.equal(formatOffset(7_200_000), '+7200s');
    assert.equal(formatOffset(-7_200_000), '-7200s');
    assert.equal(formatOffset(-90_500), '-90.5s');
    assert.equal(formatOffset(1), '+0.001s');
    assert.equal(formatOffset(0), '+0s');
  });
});

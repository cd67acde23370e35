// Original-destination recovery against the kernel: a namespace whose nft
// redirects TCP to a dual-stack listener, over IPv4 and IPv6, and a direct
// connection to the listener that must read as not redirected.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { exec, execOk } from '../support/netns-exec.ts';
import { NODE } from '../support/netns-fixtures.ts';
import { repoRoot } from '../support/netns-paths.ts';
import { isRoot } from '../support/netns-pod.ts';

const LISTEN = 15001;
const TOOL = `${repoRoot}/test/support/netns-original-dst.ts`;

interface Line {
  target: string;
  local: { address: string; port: number };
  result: { ok: true; destination: { address: string; port: number; family: string }; redirected: boolean } | { ok: false; error: string };
}

describe('netns: original destination (SO_ORIGINAL_DST through koffi)', function () {
  this.timeout(60_000);
  const ns = `fl-od-${process.pid.toString(36)}${randomBytes(2).toString('hex')}`;
  let lines: Line[] = [];

  before(async function () {
    if (!isRoot()) return this.skip();
    await execOk(['ip', 'netns', 'add', ns]);
    const inNs = (...argv: string[]) => execOk(['ip', 'netns', 'exec', ns, ...argv]);
    await inNs('ip', 'link', 'set', 'lo', 'up');
    // A veth pair inside the namespace gives it a non-loopback interface (no dummy module here).
    await inNs('ip', 'link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1');
    await inNs('ip', 'link', 'set', 'd0', 'up');
    await inNs('ip', 'link', 'set', 'd1', 'up');
    await inNs('ip', 'addr', 'add', '10.99.0.1/24', 'dev', 'd0');
    await inNs('ip', '-6', 'addr', 'add', 'fd99::1/64', 'dev', 'd0', 'nodad');
    // Locally generated connections to the "remote" .2 addresses on port 7000
    // are redirected to the listener, as faultline-init does for the app's
    // outbound traffic.
    await execOk(['ip', 'netns', 'exec', ns, 'nft', '-f', '-'], {
      input: `table inet t {\n  chain out {\n    type nat hook output priority -100;\n    tcp dport { 7000, 7001 } redirect to :${LISTEN}\n  }\n}\n`,
    });
    const r = await execOk(['ip', 'netns', 'exec', ns, NODE, TOOL, 'connect', String(LISTEN), '10.99.0.2:7000', '[fd99::2]:7001', `10.99.0.1:${LISTEN}`, `[fd99::1]:${LISTEN}`]);
    lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Line);
  });

  after(async () => {
    await exec(['ip', 'netns', 'del', ns]);
    assert.ok(!(await exec(['ip', 'netns', 'list'])).stdout.includes(ns), 'netns left behind');
  });

  const line = (target: string): Line => {
    const l = lines.find((x) => x.target === target);
    assert.ok(l, `no connection for ${target}: ${JSON.stringify(lines)}`);
    return l;
  };

  it('recovers an IPv4 destination that nft redirected', () => {
    const l = line('10.99.0.2:7000');
    assert.equal(l.local.port, LISTEN);
    assert.deepEqual(l.result, { ok: true, redirected: true, destination: { family: 'IPv4', address: '10.99.0.2', port: 7000 } });
  });

  it('recovers an IPv6 destination that nft redirected', () => {
    const l = line('[fd99::2]:7001');
    assert.equal(l.local.port, LISTEN);
    assert.deepEqual(l.result, { ok: true, redirected: true, destination: { family: 'IPv6', address: 'fd99::2', port: 7001 } });
  });

  it('reads a direct connection to the listener as not redirected, over IPv4 and IPv6', () => {
    assert.deepEqual(line(`10.99.0.1:${LISTEN}`).result, { ok: true, redirected: false, destination: { family: 'IPv4', address: '10.99.0.1', port: LISTEN } });
    assert.deepEqual(line(`[fd99::1]:${LISTEN}`).result, { ok: true, redirected: false, destination: { family: 'IPv6', address: 'fd99::1', port: LISTEN } });
  });
});

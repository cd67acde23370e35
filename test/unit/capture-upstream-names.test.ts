import assert from 'node:assert/strict';
import { literalMatcher, UpstreamNames, type Lookup } from '../../sidecar/capture/upstream-names.ts';

/** A resolver whose answers the test changes as it goes. */
function fakeDns(initial: Record<string, string[] | Error>): { lookup: Lookup; answers: Record<string, string[] | Error>; calls: string[] } {
  const answers = { ...initial };
  const calls: string[] = [];
  return {
    answers,
    calls,
    lookup: async (host) => {
      calls.push(host);
      const a = answers[host];
      if (a === undefined) throw new Error(`getaddrinfo ENOTFOUND ${host}`);
      if (a instanceof Error) throw a;
      return a;
    },
  };
}

describe('capture: outbound upstream names', () => {
  let names: UpstreamNames | undefined;
  afterEach(() => names?.close());

  it('matches a named host by the addresses it resolves to, IPv4-mapped peers included', async () => {
    const dns = fakeDns({ payments: ['10.96.0.10', 'fd00::10'] });
    names = new UpstreamNames({ lookup: dns.lookup, refreshMs: 60_000 });
    await names.track(['payments']);
    assert.ok(names.matches('payments', '10.96.0.10'));
    assert.ok(names.matches('payments', '::ffff:10.96.0.10'));
    assert.ok(names.matches('payments', 'FD00::10'));
    assert.ok(!names.matches('payments', '10.96.0.11'));
    assert.ok(!names.matches('db', '10.96.0.10'), 'an untracked host matches nothing');
  });

  it('follows address changes on refresh, and keeps the last answer when a lookup fails', async () => {
    const dns = fakeDns({ payments: ['10.96.0.10'] });
    names = new UpstreamNames({ lookup: dns.lookup, refreshMs: 60_000 });
    await names.track(['payments']);
    dns.answers.payments = ['10.96.0.20'];
    await names.refresh();
    assert.deepEqual([names.matches('payments', '10.96.0.10'), names.matches('payments', '10.96.0.20')], [false, true]);
    dns.answers.payments = new Error('getaddrinfo EAI_AGAIN payments');
    await names.refresh();
    assert.ok(names.matches('payments', '10.96.0.20'));
  });

  it('refreshes on its own timer', async () => {
    const dns = fakeDns({ payments: ['10.96.0.10'] });
    names = new UpstreamNames({ lookup: dns.lookup, refreshMs: 20 });
    await names.track(['payments']);
    dns.answers.payments = ['10.96.0.30'];
    const until = Date.now() + 2_000;
    while (!names.matches('payments', '10.96.0.30') && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    assert.ok(names.matches('payments', '10.96.0.30'));
  });

  it('resolves a host once however often the plan names it, and forgets hosts the plan dropped', async () => {
    const dns = fakeDns({ a: ['10.0.0.1'], b: ['10.0.0.2'] });
    names = new UpstreamNames({ lookup: dns.lookup, refreshMs: 60_000 });
    await Promise.all([names.track(['a', 'b']), names.track(['a', 'b'])]);
    assert.deepEqual(dns.calls.sort(), ['a', 'b']);
    await names.track(['b']);
    assert.ok(!names.matches('a', '10.0.0.1'));
    assert.ok(names.matches('b', '10.0.0.2'));
  });

  it('takes IP literals and CIDRs as they are, without DNS', async () => {
    const dns = fakeDns({});
    names = new UpstreamNames({ lookup: dns.lookup, refreshMs: 60_000 });
    await names.track(['10.20.0.0/16', 'fd00::/64', '192.168.1.5']);
    assert.deepEqual(dns.calls, []);
    assert.ok(names.matches('10.20.0.0/16', '10.20.3.4'));
    assert.ok(!names.matches('10.20.0.0/16', '10.21.0.1'));
    assert.ok(names.matches('fd00::/64', 'fd00::abcd'));
    assert.ok(names.matches('192.168.1.5', '::ffff:192.168.1.5'));
    assert.equal(literalMatcher('10.0.0.0/33'), undefined);
    assert.equal(literalMatcher('payments'), undefined);
    assert.equal(literalMatcher('10.0.0.0/8/1'), undefined);
  });
});

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const node = join(root, 'node_modules/.bin/node');

const TENANT = `apiVersion: chaos.faultline.dev/v1alpha1
kind: ChaosTenant
metadata: {name: shop}
spec:
  namespaces: [shop]
  subjects: [{kind: Group, name: sre}]
  allow:
    kinds: [http.delay, http.abort, tcp.latency]
    limits: {maxDelay: 2s}
`;
const policyYaml = (name: string, faults: string) => `apiVersion: chaos.faultline.dev/v1alpha1
kind: ChaosPolicy
metadata: {name: ${name}, namespace: shop}
spec:
  selector: {matchLabels: {app: checkout}}
  duration: 10m
${faults}`;
const DENIED = policyYaml('checkout-latency', `  http:
    - match: {port: 8080}
      delay: {fixed: 5s}
  network: {loss: {percent: 5}}
`);
const ALLOWED = policyYaml('ok', `  http: [{delay: {fixed: 200ms}}]
`);

describe('policies: faultline check (end to end)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'faultline-check-'));
    writeFileSync(join(dir, 'tenant.yaml'), TENANT);
    writeFileSync(join(dir, 'denied.yaml'), DENIED);
    writeFileSync(join(dir, 'allowed.yaml'), ALLOWED);
    writeFileSync(join(dir, 'both.yaml'), `${ALLOWED}---\n${DENIED}`);
    writeFileSync(join(dir, 'broken.yaml'), 'kind: ChaosPolicy\nspec: [unclosed');
    writeFileSync(join(dir, 'deploy.yaml'), 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const run = (...args: string[]) => {
    const r = spawnSync(node, [join(root, 'bin/faultline.js'), 'check', ...args], { cwd: dir, encoding: 'utf8' });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };

  it('exits 1 and prints the webhook\'s denial', () => {
    const r = run('denied.yaml', '--tenant', 'tenant.yaml', '--user', 'jane', '--group', 'sre');
    assert.equal(r.code, 1, r.err);
    assert.equal(r.out.trim(), 'chaospolicy "checkout-latency" in namespace "shop": admission webhook "chaospolicies.faultline.dev" denied the request: '
      + 'tenant "shop" does not allow network.loss (allowed: http.delay, http.abort, tcp.latency); '
      + 'tenant "shop" does not allow privileged faults (spec.network needs a privileged container); '
      + 'spec.http[0].delay.fixed 5s exceeds the tenant maximum of 2s');
    assert.match(r.err, /^Warning: network, io and time faults are fixed at pod start/m);
  });

  it('exits 0 when allowed, and checks the author when asked', () => {
    const ok = run('allowed.yaml', '--tenant', 'tenant.yaml', '--user', 'jane', '--group', 'sre');
    assert.equal(ok.code, 0, ok.err);
    assert.equal(ok.out.trim(), 'chaospolicy "ok" in namespace "shop": allowed by tenant "shop" (http.delay)');
    const stranger = run('allowed.yaml', '--tenant', 'tenant.yaml', '--user', 'bob');
    assert.equal(stranger.code, 1);
    assert.match(stranger.out, /tenant "shop" does not let user "bob" author policies \(subjects: Group sre\)/);
    const unchecked = run('allowed.yaml', '--tenant', 'tenant.yaml');
    assert.equal(unchecked.code, 0);
    assert.match(unchecked.err, /subjects were not checked/);
  });

  it('checks every document and exits 1 if any is denied', () => {
    const r = run('both.yaml', '--tenant', 'tenant.yaml', '--namespace', 'shop');
    assert.equal(r.code, 1);
    assert.equal(r.out.trim().split('\n').length, 2);
  });

  it('exits 2 with a clear message on usage and parse errors', () => {
    const cases: Array<[string[], RegExp]> = [
      [['allowed.yaml'], /--tenant is required/],
      [['--tenant', 'tenant.yaml'], /expected exactly one POLICY.yaml/],
      [['missing.yaml', '--tenant', 'tenant.yaml'], /cannot read missing.yaml/],
      [['broken.yaml', '--tenant', 'tenant.yaml'], /cannot parse broken.yaml \(document 1\)/],
      [['deploy.yaml', '--tenant', 'tenant.yaml'], /deploy.yaml \(document 1\) is not a ChaosPolicy/],
      [['allowed.yaml', '--tenant', 'allowed.yaml'], /is not a ChaosTenant/],
      [['allowed.yaml', '--tenant', 'tenant.yaml', '--bogus'], /Unknown option '--bogus'/],
    ];
    for (const [args, message] of cases) {
      const r = run(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, message);
    }
  });

  it('prints help', () => {
    const r = run('--help');
    assert.equal(r.code, 0);
    assert.match(r.out, /Usage: faultline check POLICY.yaml --tenant TENANT.yaml/);
  });
});

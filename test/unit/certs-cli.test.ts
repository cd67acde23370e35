// `faultline certs` as a user runs it: bin/faultline.js in a child process.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WEBHOOK_CONFIGURATION_NAME, WEBHOOK_NAMES } from '../../policies/wellknown.ts';
import { FakeApiServer } from '../support/certs-fake-apiserver.ts';
import { faultline, openssl, tempDir } from '../support/certs-tools.ts';

/** The JSON log lines of a run (pino on stdout). */
function logs(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('certs: `faultline certs` CLI', function () {
  // Each case spawns Node (type stripping + module loading) and generates RSA keys.
  this.timeout(60_000);
  let dir: string;
  let cleanup: () => Promise<void>;

  beforeEach(async function () {
    ({ dir, cleanup } = await tempDir());
  });
  afterEach(async function () {
    await cleanup();
  });

  it('prints help with exit 0', async function () {
    const r = await faultline(['certs', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: faultline certs --out DIR --service NAME/);
    assert.match(r.stdout, /--renew-within-days N/);
    const overview = await faultline(['--help']);
    assert.match(overview.stdout, /\n {2}certs +create or renew the webhook CA/);
  });

  it('generates, then keeps, verifiable material', async function () {
    const out = join(dir, 'tls');
    const args = ['certs', '--out', out, '--service', 'faultline', '--namespace', 'faultline-system', '--host', '127.0.0.1', '--host', '::1'];
    const first = await faultline(args);
    assert.equal(first.code, 0, first.stderr);
    const summary = logs(first.stdout).find((l) => l.msg === 'certificates ready: CA created, serving certificate created');
    assert.ok(summary, first.stdout);
    for (const [flag, value] of [
      ['-verify_hostname', 'faultline.faultline-system.svc'],
      ['-verify_ip', '127.0.0.1'],
      ['-verify_ip', '::1'],
    ] as const) {
      const v = await openssl('verify', '-CAfile', join(out, 'ca.crt'), flag, value, join(out, 'tls.crt'));
      assert.equal(v.code, 0, `${flag} ${value}: ${v.stderr}`);
    }
    assert.equal((await stat(join(out, 'tls.key'))).mode & 0o777, 0o600);

    const cert = await readFile(join(out, 'tls.crt'));
    const second = await faultline(args);
    assert.equal(second.code, 0, second.stderr);
    assert.ok(logs(second.stdout).some((l) => l.ca === 'kept' && l.leaf === 'kept'), second.stdout);
    assert.deepEqual(await readFile(join(out, 'tls.crt')), cert);
  });

  it('renews a 10-day certificate on the next run, keeping the CA', async function () {
    const base = ['certs', '--out', dir, '--service', 'faultline'];
    assert.equal((await faultline([...base, '--days', '10'])).code, 0);
    const ca = await readFile(join(dir, 'ca.crt'));
    const r = await faultline(base);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(logs(r.stdout).some((l) => l.ca === 'kept' && l.leaf === 'renewed'), r.stdout);
    assert.deepEqual(await readFile(join(dir, 'ca.crt')), ca);
  });

  it('exits 2 with the reason and usage on bad input', async function () {
    const cases: Array<[string[], RegExp]> = [
      [['--service', 'faultline'], /--out DIR is required/],
      [['--out', dir], /--service NAME is required/],
      [['--out', dir, '--service', 'Faultline'], /invalid service name 'Faultline'/],
      [['--out', dir, '--service', 'faultline', '--host', 'not a host'], /invalid host 'not a host'/],
      [['--out', dir, '--service', 'faultline', '--days', 'ten'], /--days must be an integer, got 'ten'/],
      [['--out', dir, '--service', 'faultline', '--days', '0'], /--days must be at least 1, got 0/],
      [['--out', dir, '--service', 'faultline', '--renew-within-days=-1'], /--renew-within-days must be at least 0/],
      [['--out', dir, '--service', 'faultline', '--days', '400', '--ca-days', '365'], /--ca-days \(365\) must be at least --days \(400\)/],
      [['--out', dir, '--service', 'faultline', '--kubeconfig', '/nonexistent'], /--kubeconfig is only used with --patch/],
      [['--out', dir, '--service', 'faultline', '--bogus'], /Unknown option '--bogus'/],
    ];
    for (const [args, message] of cases) {
      const r = await faultline(['certs', ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
      assert.match(r.stderr, message);
      assert.match(r.stderr, /Usage: faultline certs/);
    }
    // Nothing was written by any of them.
    await assert.rejects(stat(join(dir, 'ca.crt')), { code: 'ENOENT' });
  });

  describe('--patch', function () {
    let api: FakeApiServer;
    let kubeconfig: string;

    beforeEach(async function () {
      api = new FakeApiServer();
      await api.start();
      kubeconfig = join(dir, 'kubeconfig');
      await writeFile(kubeconfig, api.kubeConfigYaml());
    });
    afterEach(async function () {
      await api.stop();
    });

    it('publishes ca.crt to every webhook and exits 0', async function () {
      const cc = { service: { name: 'faultline', namespace: 'faultline-system' } };
      api.put('mutatingwebhookconfigurations', WEBHOOK_CONFIGURATION_NAME, [{ name: WEBHOOK_NAMES.mutatePods, clientConfig: { ...cc } }]);
      api.put('validatingwebhookconfigurations', WEBHOOK_CONFIGURATION_NAME, [
        { name: WEBHOOK_NAMES.validatePolicies, clientConfig: { ...cc } },
        { name: WEBHOOK_NAMES.validateTenants, clientConfig: { ...cc } },
      ]);
      const out = join(dir, 'tls');
      const r = await faultline(['certs', '--out', out, '--service', 'faultline', '--patch', '--kubeconfig', kubeconfig]);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const ca = new X509Certificate(await readFile(join(out, 'ca.crt')));
      const webhooks = [
        ...api.get('mutatingwebhookconfigurations', WEBHOOK_CONFIGURATION_NAME)!.webhooks!,
        ...api.get('validatingwebhookconfigurations', WEBHOOK_CONFIGURATION_NAME)!.webhooks!,
      ];
      assert.equal(webhooks.length, 3);
      for (const w of webhooks) {
        const pem = Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString('utf8');
        assert.equal(new X509Certificate(pem).fingerprint256, ca.fingerprint256);
      }
    });

    it('exits 1 with a clear message, not a stack trace, when the configurations are missing', async function () {
      const r = await faultline(['certs', '--out', dir, '--service', 'faultline', '--patch', '--kubeconfig', kubeconfig]);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /MutatingWebhookConfiguration "faultline" and ValidatingWebhookConfiguration "faultline" not found; install Faultline's manifests/,
      );
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    });

    it('exits 1 naming the file when the kubeconfig cannot be read, before writing anything', async function () {
      const r = await faultline(['certs', '--out', join(dir, 'tls'), '--service', 'faultline', '--patch', '--kubeconfig', join(dir, 'missing')]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /faultline certs: .*missing/);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      await assert.rejects(stat(join(dir, 'tls')), { code: 'ENOENT' });
    });
  });
});

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { FileToken, inClusterConnection, kubeconfigConnection, TOKEN_REREAD_MS } from '../../kube/connection.ts';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

function kubeconfig(cluster: Record<string, unknown>, user: Record<string, unknown>): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster: { server: 'https://10.0.0.1:6443', ...cluster } }],
    users: [{ name: 'u', user }],
    contexts: [{ name: 'other', context: { cluster: 'nope', user: 'nope' } }, { name: 'ctx', context: { cluster: 'c', user: 'u', namespace: 'ns' } }],
    'current-context': 'ctx',
  });
}

describe('sidecar kube config', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'faultline-kubeconfig-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  async function load(text: string): Promise<Awaited<ReturnType<typeof kubeconfigConnection>>> {
    const file = path.join(dir, 'config');
    await writeFile(file, text);
    return kubeconfigConnection(file);
  }

  it('reads the current context: server, CA data and a token', async () => {
    const c = await load(kubeconfig({ 'certificate-authority-data': b64('CA PEM') }, { token: 'tok' }));
    assert.equal(c.server.href, 'https://10.0.0.1:6443/');
    assert.equal(c.ca?.toString(), 'CA PEM');
    assert.equal(c.insecureSkipTLSVerify, false);
    assert.equal(await c.token?.get(), 'tok');
    assert.equal(c.clientCert, undefined);
  });

  it('resolves certificate-authority, tokenFile and client certificate files relative to the kubeconfig', async () => {
    await writeFile(path.join(dir, 'ca.crt'), 'CA FILE');
    await writeFile(path.join(dir, 'token'), 'from-file\n');
    await writeFile(path.join(dir, 'tls.crt'), 'CERT');
    await writeFile(path.join(dir, 'tls.key'), 'KEY');
    const c = await load(
      kubeconfig({ 'certificate-authority': 'ca.crt', 'tls-server-name': 'kubernetes' }, {
        token: 'literal', tokenFile: 'token', 'client-certificate': 'tls.crt', 'client-key': path.join(dir, 'tls.key'),
      }),
    );
    assert.equal(c.ca?.toString(), 'CA FILE');
    assert.equal(c.tlsServerName, 'kubernetes');
    // tokenFile wins over a literal token (client-go: it is the one kept fresh).
    assert.equal(await c.token?.get(), 'from-file');
    assert.deepEqual([c.clientCert?.toString(), c.clientKey?.toString()], ['CERT', 'KEY']);
  });

  it('takes -data over a file path and honours insecure-skip-tls-verify', async () => {
    const c = await load(kubeconfig({ 'insecure-skip-tls-verify': true }, { 'client-certificate-data': b64('C'), 'client-certificate': '/nonexistent', 'client-key-data': b64('K') }));
    assert.equal(c.insecureSkipTLSVerify, true);
    assert.equal(c.ca, undefined);
    assert.equal(c.token, undefined);
    assert.equal(c.clientCert?.toString(), 'C');
  });

  for (const [what, cluster, user, message] of [
    ['an exec plugin', {}, { exec: { command: 'aws', apiVersion: 'client.authentication.k8s.io/v1' } }, /user\.exec not supported.*no exec plugins/],
    ['an auth provider', {}, { 'auth-provider': { name: 'oidc' } }, /user\.auth-provider not supported/],
    ['basic auth', {}, { username: 'a', password: 'b' }, /user\.username, user\.password not supported/],
    ['impersonation', {}, { token: 't', as: 'admin' }, /user\.as not supported/],
    ['a proxy', { 'proxy-url': 'http://proxy:3128' }, { token: 't' }, /cluster\.proxy-url not supported/],
    ['a plain-http server', { server: 'http://10.0.0.1:8080' }, { token: 't' }, /not https:\/\//],
    ['a server with a path', { server: 'https://rancher/k8s/clusters/c-1' }, { token: 't' }, /has a path/],
    ['a certificate without its key', {}, { 'client-certificate-data': b64('C') }, /go together/],
    ['a CA together with insecure', { 'insecure-skip-tls-verify': true, 'certificate-authority-data': b64('CA') }, { token: 't' }, /exclude each other/],
  ] as const) {
    it(`refuses ${what} with a clear error`, async () => {
      await assert.rejects(load(kubeconfig(cluster, user)), (err: Error) => {
        assert.match(err.message, /^kubeconfig .*config: /);
        assert.match(err.message, message);
        return true;
      });
    });
  }

  it('refuses a kubeconfig without a usable current context', async () => {
    await assert.rejects(load(stringify({ clusters: [], users: [], contexts: [] })), /no current-context/);
    await assert.rejects(load(stringify({ 'current-context': 'x', contexts: [] })), /current-context "x" is not among its contexts/);
    await assert.rejects(load('just a string'), /not a kubeconfig/);
    await assert.rejects(load('a: [b'), /not YAML/);
  });

  it('in cluster: the token volume and KUBERNETES_SERVICE_HOST/PORT (IPv6 bracketed)', async () => {
    await writeFile(path.join(dir, 'token'), 'sa-token');
    await writeFile(path.join(dir, 'ca.crt'), 'CLUSTER CA');
    const c = await inClusterConnection(dir, { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' });
    assert.equal(c.server.origin, 'https://[fd00::1]');
    assert.equal(c.ca?.toString(), 'CLUSTER CA');
    assert.equal(await c.token?.get(), 'sa-token');
    const v4 = await inClusterConnection(dir, { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '6443' });
    assert.equal(v4.server.origin, 'https://10.96.0.1:6443');
    await assert.rejects(inClusterConnection(dir, {}), /KUBERNETES_SERVICE_HOST/);
    await assert.rejects(inClusterConnection(path.join(dir, 'missing'), { KUBERNETES_SERVICE_HOST: 'h', KUBERNETES_SERVICE_PORT: '1' }), /ENOENT/);
  });

  it('re-reads a rotating token file every TOKEN_REREAD_MS, and at once after invalidate (a 401)', async () => {
    const file = path.join(dir, 'token');
    let now = 1_000_000;
    const token = new FileToken(file, () => now);
    await writeFile(file, 'one');
    assert.equal(await token.get(), 'one');
    await writeFile(file, 'two');
    now += TOKEN_REREAD_MS - 1;
    assert.equal(await token.get(), 'one', 'cached within the period');
    now += 1;
    assert.equal(await token.get(), 'two', 're-read after the period');
    await writeFile(file, 'three');
    token.invalidate();
    assert.equal(await token.get(), 'three', 're-read after invalidate');
    await writeFile(file, '  \n');
    token.invalidate();
    await assert.rejects(token.get(), /is empty/);
  });
});

// Issue 13 L5: RBAC lets the webhook's ServiceAccount update the "faultline"
// webhook configurations by name; faultline-webhook-cabundle-only narrows
// that to their caBundle. Checked on the real kube-apiserver, acting as that
// ServiceAccount through impersonation.
import assert from 'node:assert/strict';
import { kubectlOk, useControlPlane } from '../support/e2e-cluster.ts';

const SA = 'system:serviceaccount:faultline-system:faultline-webhook';

interface Configuration {
  webhooks: Array<{ failurePolicy?: string; clientConfig: { url?: string; caBundle?: string } }>;
  [key: string]: unknown;
}

describe('e2e: the webhook’s ServiceAccount may change only the caBundle of its configurations', function () {
  const cp = useControlPlane();

  before(async function () {
    this.timeout(30_000);
    // The local install leaves the in-cluster bindings out; bind the shipped ClusterRole as a real install does.
    await kubectlOk(cp(), 'admin', ['create', 'clusterrolebinding', 'faultline-webhook-cabundle', '--clusterrole=faultline-webhook-cabundle', '--serviceaccount=faultline-system:faultline-webhook']);
  });

  async function replaceAsWebhook(edit: (c: Configuration) => void): Promise<{ code: number; stderr: string }> {
    const current = JSON.parse(await kubectlOk(cp(), 'admin', ['get', 'validatingwebhookconfiguration', 'faultline', '-o', 'json'])) as Configuration;
    edit(current);
    return cp().kubectl('admin', [`--as=${SA}`, 'replace', '-f', '-'], { input: JSON.stringify(current) });
  }

  it('refuses turning failurePolicy Fail into Ignore, or pointing a webhook elsewhere', async () => {
    for (const edit of [(c: Configuration) => (c.webhooks[0]!.failurePolicy = 'Ignore'), (c: Configuration) => (c.webhooks[0]!.clientConfig.url = 'https://127.0.0.1:1/evil')]) {
      const res = await replaceAsWebhook(edit);
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, /faultline-webhook-cabundle-only.*may change only clientConfig\.caBundle/s, res.stderr);
    }
  });

  it('lets it write the caBundle (a real change: the same CA listed twice, still trusted)', async () => {
    const twice = (b64: string): string => Buffer.from(Buffer.from(b64, 'base64').toString('utf8').repeat(2)).toString('base64');
    const res = await replaceAsWebhook((c) => {
      for (const w of c.webhooks) w.clientConfig.caBundle = twice(w.clientConfig.caBundle ?? '');
    });
    assert.equal(res.code, 0, res.stderr);
  });
});

// The install manifests against the real kube-apiserver: every object of every
// kustomization passes server-side validation (schemas, CEL in the webhook
// configurations, Pod Security on the Deployment), and uninstalling removes
// both webhook configurations. Uses a control plane of its own without
// Faultline installed: the shared one points the webhook configurations at a
// local URL, which is not what users apply.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { stringify } from 'yaml';
import { startControlPlane, type ControlPlane, type KubectlResult } from '../../controlplane/index.ts';
import { faultline, tempDir } from '../support/certs-tools.ts';
import { render, repoRoot, type K8sObject } from '../support/manifests-kustomize.ts';

const dir = (rel: string) => path.join(repoRoot, rel);
const DRY_RUN_LINE = / \(server dry run\)$/;

function ok(res: KubectlResult, what: string): string {
  assert.equal(res.code, 0, `${what}: exit ${res.code}\n${res.stderr}`);
  // The namespace enforces `restricted`; a Deployment that violated it would only be warned about here.
  assert.doesNotMatch(res.stderr, /PodSecurity/, `${what}: ${res.stderr}`);
  return res.stdout;
}

describe('e2e: install manifests, server-side dry run', function () {
  this.timeout(180_000);
  let cp: ControlPlane;

  before(async function () {
    cp = await startControlPlane({ faultline: false, keep: process.env.FAULTLINE_E2E_KEEP === '1' });
    // A dry run persists nothing, so the namespaced objects of a dry-run
    // install would find no faultline-system namespace. Create it for real,
    // from the manifest, as the first step of a real `apply -k` would.
    ok(await cp.kubectl('admin', ['apply', '-f', dir('manifests/base/namespace.yaml')]), 'creating the namespace');
  });

  after(async function () {
    await cp?.stop();
  });

  for (const rel of ['manifests', 'manifests/overlays/dev'] as const) {
    it(`kubectl apply --dry-run=server -k ${rel} accepts every object`, async function () {
      const objects = await render(rel);
      const out = ok(await cp.kubectl('admin', ['apply', '--dry-run=server', '-k', dir(rel)]), `apply -k ${rel}`);
      const lines = out.trim().split('\n');
      assert.equal(lines.length, objects.length, `one result per object:\n${out}`);
      for (const line of lines) assert.match(line, DRY_RUN_LINE);
    });
  }

  it('the cert-manager overlay is accepted, except the cert-manager objects this cluster has no CRDs for', async function () {
    const objects = await render('manifests/overlays/cert-manager');
    // Issuer and Certificate are validated by cert-manager's CRDs and webhook,
    // which are not installed here; a schemaless stand-in CRD would accept
    // anything and prove nothing. Everything else, including the webhook
    // configurations carrying the cainjector annotation, is checked.
    const isCertManager = (o: K8sObject) => o.apiVersion.startsWith('cert-manager.io/');
    const excluded = objects.filter(isCertManager).map((o) => o.kind).sort();
    assert.deepEqual([...new Set(excluded)], ['Certificate', 'Issuer'], 'only cert-manager kinds are excluded');
    const rest = objects.filter((o) => !isCertManager(o));
    const out = ok(await cp.kubectl('admin', ['apply', '--dry-run=server', '-f', '-'], { input: rest.map((o) => stringify(o)).join('---\n') }), 'apply cert-manager overlay');
    assert.equal(out.trim().split('\n').length, rest.length, out);
    // The self-managed certificate mode is off in this overlay: cert-manager owns the Secret.
    const deployment = rest.find((o) => o.kind === 'Deployment') as unknown as { spec: { template: { spec: { containers: Array<{ args: string[] }> } } } };
    assert.ok(!deployment.spec.template.spec.containers[0]!.args.some((a) => a.startsWith('--cert-secret')), 'no --cert-secret with cert-manager');
  });

  it('kubectl delete -k manifests/ removes both webhook configurations (nothing left blocking the cluster)', async function () {
    ok(await cp.kubectl('admin', ['apply', '-k', dir('manifests')]), 'installing for real');
    const out = ok(await cp.kubectl('admin', ['delete', '--dry-run=server', '-k', dir('manifests')]), 'delete -k');
    const lines = out.trim().split('\n');
    for (const kind of ['mutatingwebhookconfiguration', 'validatingwebhookconfiguration']) {
      assert.ok(lines.includes(`${kind}.admissionregistration.k8s.io "faultline" deleted (server dry run)`), `${kind} is deleted:\n${out}`);
    }
    for (const line of lines) assert.match(line, DRY_RUN_LINE);
    // A dry run: both are still there.
    ok(await cp.kubectl('admin', ['get', 'mutatingwebhookconfiguration,validatingwebhookconfiguration', 'faultline']), 'still installed');
  });

  it('faultline certs --patch writes the CA into the caBundle of every installed webhook, once', async function () {
    // Runs after the real install above: the configurations exist, with no caBundle yet.
    const { dir: out, cleanup } = await tempDir();
    try {
      const args = ['certs', '--out', out, '--service', 'faultline-webhook', '--patch', '--kubeconfig', cp.kubeconfigs.admin];
      const first = await faultline(args);
      assert.equal(first.code, 0, first.stdout + first.stderr);
      const want = Buffer.from(await readFile(path.join(out, 'ca.crt'))).toString('base64');
      const bundles = async () => {
        const configs = JSON.parse(ok(await cp.kubectl('admin', ['get', 'mutatingwebhookconfiguration,validatingwebhookconfiguration', 'faultline', '-o', 'json']), 'get')) as {
          items: Array<{ webhooks: Array<{ name: string; clientConfig: { caBundle?: string } }> }>;
        };
        return configs.items.flatMap((c) => c.webhooks.map((w) => [w.name, w.clientConfig.caBundle]));
      };
      const patched = await bundles();
      assert.equal(patched.length, 3, JSON.stringify(patched));
      for (const [name, bundle] of patched) assert.equal(bundle, want, `${name} carries ca.crt, base64-encoded once`);
      // Valid material is kept, so a second run changes nothing in the cluster either.
      const second = await faultline(args);
      assert.equal(second.code, 0, second.stderr);
      assert.deepEqual(await bundles(), patched);
    } finally {
      await cleanup();
    }
  });
});

// Pods the webhook must leave alone because of where they are or what they
// run on: namespaces whose Pod Security level refuses faultline-init, read from
// the cluster cache's namespace labels, and Windows pods. Each is skipped with
// a warning, a log line and a skip-reason metric, through the real route table.
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { V1Pod } from '@kubernetes/client-node';
import { POD_SECURITY_ENFORCE_LABEL } from '../../policies/wellknown.ts';
import { parseReview, type AdmissionVerdict } from '../../webhook/admission.ts';
import type { WebhookContext } from '../../webhook/app.ts';
import { loadInjectionConfig } from '../../webhook/injection-config.ts';
import { createMetrics } from '../../webhook/metrics.ts';
import { admissionRoutes } from '../../webhook/routes.ts';
import { FakeCluster } from '../support/admission-cluster.ts';
import { podReview } from '../support/webhook-server.ts';

const pod = (spec: Partial<V1Pod['spec']> = {}): V1Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web' },
  spec: { containers: [{ name: 'app', image: 'nginx:1.27', ports: [{ containerPort: 8080 }] }], ...spec },
});

describe('webhook: pods skipped for their namespace or OS', () => {
  const logs: Array<{ msg: string; reason?: string; namespace?: string }> = [];
  const ctx: WebhookContext = {
    log: pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as (typeof logs)[number]) }),
    metrics: createMetrics(),
    state: { ready: true, draining: false },
  };
  const cluster = new FakeCluster()
    .withNamespace('strict', true, { [POD_SECURITY_ENFORCE_LABEL]: 'restricted' })
    .withNamespace('base', true, { [POD_SECURITY_ENFORCE_LABEL]: 'baseline' })
    .withNamespace('priv', true, { [POD_SECURITY_ENFORCE_LABEL]: 'privileged' })
    .withNamespace('shop');
  const mutate = admissionRoutes(ctx, loadInjectionConfig({}, {}), cluster).find((r) => r.path === '/mutate/pods')!.handler;
  const review = (p: V1Pod, namespace: string): Promise<AdmissionVerdict> => mutate(parseReview(podReview(p, { namespace })));
  const skips = async (reason: string): Promise<number> =>
    (await ctx.metrics.skips.get()).values.find((v) => v.labels.reason === reason && v.labels.dry_run === 'false')?.value ?? 0;

  async function assertSkipped(p: V1Pod, namespace: string, reason: string, warning: RegExp): Promise<void> {
    const before = await skips(reason);
    logs.length = 0;
    const verdict = await review(p, namespace);
    assert.equal(verdict.allowed, true);
    assert.equal(verdict.patch, undefined);
    assert.equal(verdict.warnings?.length, 1);
    assert.match(verdict.warnings![0]!, new RegExp(`^faultline: proxy not injected \\(${reason}\\): `));
    assert.match(verdict.warnings![0]!, warning);
    assert.equal(await skips(reason), before + 1);
    assert.deepEqual(
      logs.map((l) => [l.reason, l.namespace]),
      [[reason, namespace]],
      'one log line naming the reason',
    );
    assert.match(logs[0]!.msg, warning);
  }

  for (const level of ['restricted', 'baseline']) {
    it(`skips pods in a namespace enforcing Pod Security "${level}", saying how to opt in`, async () => {
      await assertSkipped(pod(), level === 'restricted' ? 'strict' : 'base', 'pod-security', new RegExp(`enforces Pod Security "${level}".*${POD_SECURITY_ENFORCE_LABEL}=privileged`));
    });
  }

  it('injects where Pod Security enforces "privileged", where no level is set, and in a namespace the cache has not seen yet', async () => {
    for (const namespace of ['priv', 'shop', 'brand-new']) {
      const verdict = await review(pod(), namespace);
      assert.ok((verdict.patch?.length ?? 0) > 0, `${namespace}: ${verdict.warnings?.join('; ')}`);
    }
  });

  it('skips a Windows pod (spec.os.name: windows)', async () => {
    await assertSkipped(pod({ os: { name: 'windows' } }), 'shop', 'windows-pod', /spec\.os\.name: windows.*Linux securityContext/);
  });

  it('skips a pod that selects Windows nodes, and injects one that selects Linux nodes', async () => {
    await assertSkipped(pod({ nodeSelector: { 'kubernetes.io/os': 'windows' } }), 'shop', 'windows-pod', /selects Windows nodes/);
    assert.ok(((await review(pod({ os: { name: 'linux' }, nodeSelector: { 'kubernetes.io/os': 'linux' } }), 'shop')).patch?.length ?? 0) > 0);
  });

  it('keeps skipping hostNetwork pods', async () => {
    await assertSkipped(pod({ hostNetwork: true }), 'shop', 'host-network', /hostNetwork/);
  });
});

// ChaosPolicy / ChaosTenant admission and the policy reconciler through a real
// kube-apiserver: tenant users run the built kubectl with their own
// credentials, so every denial below is exactly what a user would read.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import type { KubectlResult, User } from '../../controlplane/index.ts';
import type { ChaosPolicy, ChaosPolicySpec, ChaosTenant, Condition } from '../../policies/types.ts';
import { API_GROUP_VERSION, CHAOS_LABEL, CHAOS_LABEL_ENABLED, WEBHOOK_NAMES } from '../../policies/wellknown.ts';
import { freshNamespace, getJson, kubectlOk, pod, useControlPlane } from '../support/e2e-cluster.ts';
import { createRunningPod, markRunning, waitForPolicy, waitForSidecarBinding } from '../support/e2e-sidecar-cluster.ts';

const ALLOW = { kinds: ['http.delay', 'http.abort', 'tcp.latency'], limits: { maxDelay: '2s', maxDuration: '1h' } };

function tenantObject(name: string, namespaces: string[], group: string): ChaosTenant {
  return {
    apiVersion: API_GROUP_VERSION,
    kind: 'ChaosTenant',
    metadata: { name },
    spec: { namespaces, subjects: [{ kind: 'Group', name: group }], allow: ALLOW },
  };
}

function policyObject(name: string, spec: Partial<ChaosPolicySpec>): ChaosPolicy {
  return {
    apiVersion: API_GROUP_VERSION,
    kind: 'ChaosPolicy',
    metadata: { name },
    spec: { selector: { matchLabels: { app: 'web' } }, duration: '10m', http: [{ delay: { fixed: '200ms' } }], ...spec },
  };
}

function condition(p: ChaosPolicy, type: string): Condition | undefined {
  return p.status?.conditions?.find((c) => c.type === type);
}

/** The webhook's cache learns of a write through its watch, a moment after the write returns. */
async function retryWhileCacheCatchesUp(run: () => Promise<KubectlResult>, stale: RegExp): Promise<KubectlResult> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const res = await run();
    if (!stale.test(res.stderr) || Date.now() > deadline) return res;
    await sleep(100);
  }
}

describe('e2e: ChaosPolicy and ChaosTenant admission', function () {
  const cp = useControlPlane();
  let dir = '';

  /** Writes `object` as YAML into a real file, as users keep them, and returns its path. */
  async function manifest(file: string, object: object): Promise<string> {
    const full = path.join(dir, file);
    await writeFile(full, stringify(object));
    return full;
  }

  async function apply(user: User, namespace: string, file: string): Promise<KubectlResult> {
    return cp().kubectl(user, ['apply', '-n', namespace, '-f', file]);
  }

  before(async function () {
    this.timeout(60_000);
    dir = await mkdtemp(path.join(tmpdir(), 'faultline-policies-'));
    for (const [ns, user] of [['shop', 'alice'], ['pay', 'bob']] as const) {
      await kubectlOk(cp(), 'admin', ['create', '-f', '-'], { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { [CHAOS_LABEL]: CHAOS_LABEL_ENABLED } } });
      await kubectlOk(cp(), 'admin', ['create', 'rolebinding', `${user}-chaos`, '--clusterrole=faultline-tenant-editor', `--user=${user}`, '-n', ns]);
    }
    await kubectlOk(cp(), 'admin', ['create', '-f', '-'], tenantObject('shop', ['shop'], 'tenant-shop'));
    await kubectlOk(cp(), 'admin', ['create', '-f', '-'], tenantObject('pay', ['pay'], 'tenant-pay'));
  });

  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('admits a policy within the allowlist; kubectl lists, describes and explains it', async () => {
    await createRunningPod(cp(), 'admin', 'shop', pod('web-1', { metadata: { labels: { app: 'web' } } }));
    const file = await manifest('checkout-latency.yaml', policyObject('checkout-latency', {}));
    const applied = await apply('alice', 'shop', file);
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stdout, /chaospolicy\.chaos\.faultline\.dev\/checkout-latency created/);

    const t0 = performance.now();
    const policy = await waitForPolicy(cp(), 'shop', 'checkout-latency', 'targets written', (p) => (p.status?.targets ?? []).length > 0);
    const ms = performance.now() - t0;
    process.stderr.write(`[e2e] apply → status.targets in ${ms.toFixed(0)} ms (polled via kubectl)\n`);
    assert.deepEqual(policy.status?.targets, ['web-1']);
    assert.equal(policy.status?.tenant, 'shop');
    assert.equal(policy.status?.faults, 'http.delay');

    const list = await kubectlOk(cp(), 'alice', ['get', 'chaos', '-n', 'shop']);
    assert.match(list, /checkout-latency/);
    const described = await waitForDescribe('checkout-latency', /Started/);
    assert.match(described, /Tenant:\s+shop/);
    assert.match(described, /Targets:\s+web-1/);
    assert.match(described, /Normal\s+Started\s+.*faults active on 1 pod\(s\): web-1/);

    const explained = await kubectlOk(cp(), 'alice', ['explain', 'chaospolicy.spec.http']);
    assert.match(explained, /FIELDS:/);
    assert.match(explained, /delay\s+<Object>/);
  });

  async function waitForDescribe(name: string, expected: RegExp): Promise<string> {
    const deadline = Date.now() + 10_000;
    let out = '';
    while (Date.now() < deadline) {
      out = await kubectlOk(cp(), 'alice', ['describe', 'chaospolicy', name, '-n', 'shop']);
      if (expected.test(out)) return out;
      await sleep(200);
    }
    return out;
  }

  it('denies a policy outside the allowlist with the tenant, field paths and limits in kubectl’s error', async () => {
    const file = await manifest('too-much.yaml', policyObject('too-much', {
      http: [{ delay: { fixed: '5s' } }],
      tcp: [{ port: 6379, toxics: [{ type: 'bandwidth', rate: 100 }] }],
    }));
    const res = await apply('alice', 'shop', file);
    assert.notEqual(res.code, 0);
    const expected =
      `Error from server (Forbidden): error when creating "${file}": admission webhook "${WEBHOOK_NAMES.validatePolicies}" denied the request: ` +
      'tenant "shop" does not allow tcp.bandwidth (allowed: http.delay, http.abort, tcp.latency); spec.http[0].delay.fixed 5s exceeds the tenant maximum of 2s';
    assert.ok(res.stderr.split('\n').includes(expected), `stderr:\n${res.stderr}\nexpected the line:\n${expected}`);
    assert.notEqual((await cp().kubectl('admin', ['get', 'chaospolicy', 'too-much', '-n', 'shop'])).code, 0, 'nothing was stored');
  });

  it('denies policies in a namespace without the chaos label and in a labelled one no tenant owns', async () => {
    const plain = await freshNamespace(cp(), { editor: 'alice' });
    const orphan = await freshNamespace(cp(), { chaos: true, editor: 'alice' });
    const file = await manifest('ok.yaml', policyObject('ok', {}));
    const inPlain = await apply('alice', plain, file);
    assert.notEqual(inPlain.code, 0);
    assert.match(inPlain.stderr, new RegExp(`denied the request: namespace "${plain}" is not opted in to chaos \\(label it faultline\\.dev/chaos=enabled\\)`));
    const inOrphan = await apply('alice', orphan, file);
    assert.notEqual(inOrphan.code, 0);
    assert.match(inOrphan.stderr, new RegExp(`denied the request: namespace "${orphan}" belongs to no ChaosTenant`));
  });

  it('keeps alice out of pay: RBAC first, and the tenant’s subjects where RBAC would let her in', async () => {
    const file = await manifest('ok.yaml', policyObject('ok', {}));
    const rbac = await apply('alice', 'pay', file);
    assert.notEqual(rbac.code, 0);
    // kubectl apply reads the object first, so the refusal is of that GET.
    assert.match(rbac.stderr, /^Error from server \(Forbidden\)/);
    assert.match(rbac.stderr, /chaospolicies\.chaos\.faultline\.dev "ok" is forbidden: User "alice" cannot get resource "chaospolicies" in API group "chaos\.faultline\.dev" in the namespace "pay"/);
    assert.doesNotMatch(rbac.stderr, /admission webhook/, 'RBAC refuses before admission is consulted');

    // A second namespace of tenant pay where alice does hold `edit`.
    const annex = await freshNamespace(cp(), { chaos: true, editor: 'alice' });
    await kubectlOk(cp(), 'admin', ['patch', 'chaostenant', 'pay', '--type=merge', '-p', JSON.stringify({ spec: { namespaces: ['pay', annex] } })]);
    try {
      const res = await retryWhileCacheCatchesUp(() => apply('alice', annex, file), /belongs to no ChaosTenant/);
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, /denied the request: tenant "pay" does not let user "alice" \(groups: tenant-shop, system:authenticated\) author policies \(subjects: Group tenant-pay\)/);
      const asBob = await cp().kubectl('bob', ['auth', 'can-i', 'create', 'chaospolicies', '-n', annex]);
      assert.equal(asBob.stdout.trim(), 'no', 'bob has no RBAC there: the only thing stopping alice is the tenant');
    } finally {
      await kubectlOk(cp(), 'admin', ['patch', 'chaostenant', 'pay', '--type=merge', '-p', JSON.stringify({ spec: { namespaces: ['pay'] } })]);
    }
  });

  it('denies a second tenant claiming a namespace another tenant owns', async () => {
    const file = await manifest('shop-too.yaml', tenantObject('shop-too', ['shop', 'elsewhere'], 'tenant-shop'));
    const res = await cp().kubectl('admin', ['apply', '-f', file]);
    assert.notEqual(res.code, 0);
    assert.ok(
      res.stderr.includes(
        `Error from server (Forbidden): error when creating "${file}": admission webhook "${WEBHOOK_NAMES.validateTenants}" denied the request: ` +
          'ChaosTenant "shop-too" would share namespaces with other tenants: "shop" (tenant "shop"); a namespace belongs to at most one tenant',
      ),
      res.stderr,
    );
  });

  it('refuses every policy write while the webhook is down (failurePolicy Fail)', async function () {
    this.timeout(90_000);
    const file = await manifest('while-down.yaml', policyObject('while-down', {}));
    await cp().stopWebhook();
    try {
      const res = await apply('alice', 'shop', file);
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, new RegExp(`failed calling webhook "${WEBHOOK_NAMES.validatePolicies.replace(/\./g, '\\.')}".*connection refused`));
    } finally {
      await cp().startWebhook();
    }
    assert.notEqual((await cp().kubectl('admin', ['get', 'chaospolicy', 'while-down', '-n', 'shop'])).code, 0, 'nothing was stored');
  });

  it('lets a deleted policy’s finalizers come off one by one while the webhook is down (matchConditions; issue 13 M4)', async function () {
    this.timeout(90_000);
    const held = policyObject('held', {});
    // Two holders: taking the first off is a plain UPDATE of an object that stays (the API server deletes it with the last).
    held.metadata.finalizers = ['example.com/first', 'example.com/second'];
    await kubectlOk(cp(), 'alice', ['create', '-n', 'shop', '-f', '-'], held);
    await kubectlOk(cp(), 'alice', ['delete', 'chaospolicy', 'held', '-n', 'shop', '--wait=false']);
    await cp().stopWebhook();
    try {
      for (const finalizers of [['example.com/second'], []]) {
        const res = await cp().kubectl('alice', ['patch', 'chaospolicy', 'held', '-n', 'shop', '--type=merge', '-p', JSON.stringify({ metadata: { finalizers } })]);
        assert.equal(res.code, 0, `setting finalizers ${JSON.stringify(finalizers)} with the webhook down: ${res.stderr}`);
      }
    } finally {
      await cp().startWebhook();
    }
    assert.notEqual((await cp().kubectl('admin', ['get', 'chaospolicy', 'held', '-n', 'shop'])).code, 0, 'the policy is gone');
  });
});

describe('e2e: ChaosPolicy status reconciler', function () {
  const cp = useControlPlane();
  let ns = '';

  before(async function () {
    this.timeout(60_000);
    ns = await freshNamespace(cp(), { chaos: true, editor: 'alice' });
    await kubectlOk(cp(), 'admin', ['create', '-f', '-'], tenantObject(`t-${ns}`, [ns], 'tenant-shop'));
    for (const name of ['web-a', 'web-b']) {
      await kubectlOk(cp(), 'admin', ['create', '-n', ns, '-f', '-'], pod(name, { metadata: { labels: { app: 'web' } } }));
      await markRunning(cp(), ns, name);
    }
  });

  async function create(p: ChaosPolicy): Promise<void> {
    // The tenant created in before() may not have reached the webhook's cache yet.
    const res = await retryWhileCacheCatchesUp(() => cp().kubectl('alice', ['create', '-n', ns, '-f', '-'], { input: JSON.stringify(p) }), /belongs to no ChaosTenant/);
    if (res.code !== 0) throw new Error(res.stderr);
  }

  const waitFor = (name: string, what: string, done: (p: ChaosPolicy) => boolean, timeoutMs?: number): Promise<ChaosPolicy> =>
    waitForPolicy(cp(), ns, name, what, done, timeoutMs);

  it('targets exactly one of two injected pods in mode fixed 1, and reports Active', async () => {
    await create(policyObject('fixed-one', { mode: { type: 'fixed', value: 1 } }));
    const p = await waitFor('fixed-one', 'Active', (x) => condition(x, 'Active')?.status === 'True');
    assert.equal(p.status?.targets?.length, 1);
    assert.ok(['web-a', 'web-b'].includes(p.status!.targets![0]!));
    assert.equal(p.status?.targetedPods, 1);
    assert.equal(condition(p, 'Admitted')?.status, 'True');
    assert.equal(p.status?.observedGeneration, p.metadata.generation);
    assert.equal(Date.parse(p.status!.expiresAt!) - Date.parse(p.status!.startedAt!), 10 * 60_000);

    // No hot loop: nothing changes, so nothing is written.
    const rv = p.metadata.resourceVersion;
    await sleep(1500);
    const again = await getJson<ChaosPolicy>(cp(), 'admin', ['chaospolicy', 'fixed-one', '-n', ns]);
    assert.equal(again.metadata.resourceVersion, rv, 'the reconciler rewrote an unchanged status');
  });

  it('reports Paused once the policy is paused, keeping the transition time of unchanged conditions', async () => {
    await create(policyObject('pausable', {}));
    const active = await waitFor('pausable', 'Active', (x) => condition(x, 'Active')?.status === 'True');
    await kubectlOk(cp(), 'alice', ['patch', 'chaospolicy', 'pausable', '-n', ns, '--type=merge', '-p', '{"spec":{"paused":true}}']);
    const paused = await waitFor('pausable', 'Paused', (x) => condition(x, 'Paused')?.status === 'True');
    assert.equal(condition(paused, 'Active')?.status, 'False');
    assert.equal(condition(paused, 'Active')?.reason, 'Paused');
    assert.equal(condition(paused, 'Admitted')?.lastTransitionTime, condition(active, 'Admitted')?.lastTransitionTime);
    const events = await kubectlOk(cp(), 'admin', ['get', 'events', '-n', ns, '--field-selector', 'involvedObject.name=pausable', '-o', 'jsonpath={.items[*].reason}']);
    assert.match(events, /Paused/);
  });

  it('expires a 5s policy on time', async function () {
    this.timeout(60_000);
    await create(policyObject('short', { duration: '5s' }));
    const started = await waitFor('short', 'started', (x) => x.status?.startedAt !== undefined);
    const expiresAt = Date.parse(started.status!.expiresAt!);
    assert.equal(expiresAt - Date.parse(started.status!.startedAt!), 5000);
    const expired = await waitFor('short', 'Expired', (x) => condition(x, 'Expired')?.status === 'True', 20_000);
    const seenAt = Date.now();
    assert.ok(seenAt - expiresAt < 4000, `Expired seen ${seenAt - expiresAt} ms after expiresAt`);
    assert.equal(condition(expired, 'Active')?.status, 'False');
    assert.deepEqual(expired.status?.targets ?? [], []);
  });

  it('binds faultline-sidecar in chaos namespaces so service accounts can watch their own namespace’s policies only', async () => {
    await waitForSidecarBinding(cp(), ns, 10_000);
    const canI = async (namespace: string): Promise<string> =>
      (await cp().kubectl('admin', ['auth', 'can-i', 'watch', 'chaospolicies', '-n', namespace, `--as=system:serviceaccount:${ns}:default`, `--as-group=system:serviceaccounts:${ns}`, '--as-group=system:serviceaccounts'])).stdout.trim();
    assert.equal(await canI(ns), 'yes');
    assert.equal(await canI('shop'), 'no');

    // Opting out removes the binding.
    await kubectlOk(cp(), 'admin', ['label', 'namespace', ns, `${CHAOS_LABEL}-`]);
    try {
      const until = Date.now() + 10_000;
      while ((await cp().kubectl('admin', ['get', 'rolebinding', 'faultline-sidecar', '-n', ns])).code === 0) {
        if (Date.now() > until) throw new Error('faultline-sidecar still bound after the namespace opted out');
        await sleep(100);
      }
    } finally {
      await kubectlOk(cp(), 'admin', ['label', 'namespace', ns, `${CHAOS_LABEL}=${CHAOS_LABEL_ENABLED}`]);
    }
  });
});

// Self-managed certificates (`faultline webhook --cert-secret`) against the
// real kube-apiserver: two replicas share one Secret behind a round-robin (the
// Service), agree on one CA, rotate it under continuous admissions without a
// single failed review, keep it across restarts, and repair a stripped caBundle.
import assert from 'node:assert/strict';
import { randomBytes, X509Certificate } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { AdmissionregistrationV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { certificateBlocks } from '../../certs/bundle.ts';
import { ROTATE_ANNOTATION, SECRET_KEYS } from '../../certs/secret-plan.ts';
import { freePorts } from '../../common/ports.ts';
import type { ManagedProcess } from '../../controlplane/process.ts';
import { API_GROUP, API_GROUP_VERSION, API_VERSION, INJECTED_ANNOTATION, SYSTEM_NAMESPACE, WEBHOOK_CONFIGURATION_NAME } from '../../policies/wellknown.ts';
import { servedCertificate, startReplica, startRoundRobin, type RoundRobin } from '../support/certs-rotation-replicas.ts';
import { freshNamespace, getJson, kubectlOk, pod, tenantNamespace, useControlPlane, type Pod } from '../support/e2e-cluster.ts';

const CONFIG_KINDS = ['mutatingwebhookconfiguration', 'validatingwebhookconfiguration'] as const;
const REFRESH = '1s';
const PROPAGATION = '2s';

interface Config {
  metadata: { resourceVersion?: string; managedFields?: unknown };
  webhooks: Array<{ name: string; clientConfig: { url?: string; caBundle?: string } }>;
}
interface Secret {
  metadata: { resourceVersion: string; annotations?: Record<string, string> };
  data: Record<string, string>;
}

const fingerprints = (pem: string) => certificateBlocks(pem).map((b) => new X509Certificate(b).fingerprint256);
/** The API server's message from a client-node ApiException (its own message repeats headers and body). */
const reason = (err: unknown): string => {
  const body = (err as { body?: unknown }).body;
  try {
    return (JSON.parse(String(body)) as { message?: string }).message ?? String(body);
  } catch {
    return (err as Error).message;
  }
};
const issuedBy = (leaf: X509Certificate, caPem: string) => {
  const ca = new X509Certificate(caPem);
  return leaf.checkIssued(ca) && leaf.verify(ca.publicKey);
};

describe('e2e: self-managed certificates in a Secret, rotated under load', function () {
  this.timeout(180_000);
  const cp = useControlPlane();
  const secretName = `faultline-webhook-tls-${randomBytes(3).toString('hex')}`;
  const replicas = new Map<'a' | 'b', ManagedProcess>();
  let ports: { a: number; b: number };
  let proxy: RoundRobin;
  /** The configurations as the shared control plane installed them, restored afterwards for the other suites. */
  const saved = new Map<string, Config>();

  async function readSecret(): Promise<Secret> {
    return getJson<Secret>(cp(), 'admin', ['secret', secretName, '-n', SYSTEM_NAMESPACE]);
  }
  const pem = (s: Secret, key: string) => Buffer.from(s.data[key] ?? '', 'base64').toString('utf8');

  /** Fingerprints of the CAs trusted by every webhook of both configurations (the intersection). */
  async function publishedCas(): Promise<string[]> {
    const api = cp().client('admin').makeApiClient(AdmissionregistrationV1Api);
    const configs = [await api.readMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION_NAME }), await api.readValidatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION_NAME })];
    const perWebhook = configs.flatMap((c) => (c.webhooks ?? []).map((w) => fingerprints(Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString('utf8'))));
    return perWebhook.reduce((acc, fps) => acc.filter((fp) => fps.includes(fp)));
  }

  /** Replaces both configurations with `edit` applied to the saved ones (no resourceVersion: an unconditional write, like kubectl replace). */
  async function replaceConfigs(edit: (hook: Config['webhooks'][number]) => Config['webhooks'][number]): Promise<Config[]> {
    const stored: Config[] = [];
    for (const kind of CONFIG_KINDS) {
      const config = structuredClone(saved.get(kind)!);
      delete config.metadata.resourceVersion;
      delete config.metadata.managedFields;
      config.webhooks = config.webhooks.map(edit);
      stored.push(JSON.parse(await kubectlOk(cp(), 'admin', ['replace', '-o', 'json', '-f', '-'], config)) as Config);
    }
    return stored;
  }
  /** What `kubectl replace` of manifests without caBundle does: every webhook points at the round-robin, trusting nothing. */
  const viaProxyWithoutCaBundle = (hook: Config['webhooks'][number]) => ({
    ...hook,
    clientConfig: { url: `https://127.0.0.1:${proxy.port}${new URL(hook.clientConfig.url!).pathname}` },
  });

  async function start(name: 'a' | 'b'): Promise<void> {
    replicas.set(name, await startReplica(cp(), { name, port: ports[name], secret: `${SYSTEM_NAMESPACE}/${secretName}`, refreshInterval: REFRESH, propagationDelay: PROPAGATION }));
  }

  async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms\nreplica a:\n${await replicas.get('a')?.logTail(15)}\nreplica b:\n${await replicas.get('b')?.logTail(15)}`);
      await sleep(100);
    }
  }

  /** A server-side dry-run pod CREATE in a chaos namespace comes back injected: the API server trusts the replicas. */
  async function injectedDryRun(ns: string): Promise<boolean> {
    const res = await cp().kubectl('admin', ['create', '--dry-run=server', '-o', 'json', '-n', ns, '-f', '-'], { input: JSON.stringify(pod('probe')) });
    return res.code === 0 && Boolean((JSON.parse(res.stdout) as Pod).metadata.annotations?.[INJECTED_ANNOTATION]);
  }

  before(async function () {
    const [a, b] = await freePorts(2);
    ports = { a: a!, b: b! };
    proxy = await startRoundRobin([ports.a, ports.b]);
    for (const kind of CONFIG_KINDS) saved.set(kind, await getJson<Config>(cp(), 'admin', [kind, WEBHOOK_CONFIGURATION_NAME]));
    await replaceConfigs(viaProxyWithoutCaBundle);
  });

  after(async function () {
    this.timeout(60_000);
    await Promise.all([...replicas.values()].map((r) => r.stop()));
    await proxy?.close();
    if (saved.size === CONFIG_KINDS.length) await replaceConfigs((hook) => hook);
    await cp().kubectl('admin', ['delete', 'secret', secretName, '-n', SYSTEM_NAMESPACE, '--ignore-not-found']);
  });

  it('two replicas starting without the Secret agree on one CA, serve leaves it signed, and publish it', async function () {
    assert.notEqual((await cp().kubectl('admin', ['get', 'secret', secretName, '-n', SYSTEM_NAMESPACE])).code, 0, 'the Secret does not exist yet');
    // Started together, so both find the Secret missing and race to create it.
    await Promise.all([start('a'), start('b')]);

    const secret = await readSecret();
    const ca = pem(secret, SECRET_KEYS.caCert);
    assert.deepEqual(fingerprints(pem(secret, SECRET_KEYS.bundle)), fingerprints(ca), 'exactly one CA is trusted');
    for (const port of [ports.a, ports.b]) {
      const served = await servedCertificate(port);
      assert.ok(issuedBy(served, ca), `127.0.0.1:${port} serves a leaf signed by the Secret's CA`);
      assert.equal(served.fingerprint256, new X509Certificate(pem(secret, SECRET_KEYS.cert)).fingerprint256, 'and it is the Secret\'s leaf');
    }
    // Ready implies the first pass, publish included, is done.
    assert.deepEqual(await publishedCas(), fingerprints(ca), 'every caBundle holds that CA, and only it');
    const ns = await freshNamespace(cp(), { chaos: true });
    await waitFor('the API server injecting through the replicas', 30_000, async () => ((await injectedDryRun(ns)) ? true : undefined));
  });

  it('a forced CA rotation publishes the new CA before any replica serves it, with zero failed admissions', async function () {
    const ns = await tenantNamespace(cp(), { kinds: ['http.delay'], limits: { maxDelay: '2s', maxDuration: '1h' } });
    await kubectlOk(cp(), 'admin', ['create', 'rolebinding', 'alice-chaos', '--clusterrole=faultline-tenant-editor', '--user=alice', '-n', ns]);
    const alice = cp().client('alice');
    const pods = alice.makeApiClient(CoreV1Api);
    const objects = alice.makeApiClient(CustomObjectsApi);
    const policy = (name: string) => ({
      apiVersion: API_GROUP_VERSION,
      kind: 'ChaosPolicy',
      metadata: { name },
      spec: { selector: { matchLabels: { app: 'web' } }, duration: '10m', http: [{ delay: { fixed: '100ms' } }] },
    });
    const createPolicy = (name: string, dryRun?: 'All') =>
      objects.createNamespacedCustomObject({ group: API_GROUP, version: API_VERSION, namespace: ns, plural: 'chaospolicies', body: policy(name), ...(dryRun ? { dryRun } : {}) });
    // The replicas' informers must know the new tenant before the load starts counting.
    await waitFor('the tenant reaching the replicas', 15_000, () => createPolicy('probe', 'All').then(() => true, () => undefined));

    const oldSecret = await readSecret();
    const oldCa = pem(oldSecret, SECRET_KEYS.caCert);
    const failures: string[] = [];
    const created = { pods: [] as number[], policies: [] as number[] };
    let loading = true;
    const podLoop = (async () => {
      for (let i = 0; loading; i++) {
        try {
          const stored = await pods.createNamespacedPod({ namespace: ns, body: pod(`load-${i}`, { metadata: { labels: { app: 'web' } } }) });
          if (stored.metadata?.annotations?.[INJECTED_ANNOTATION]) created.pods.push(Date.now());
          else failures.push(`pod load-${i} was admitted without injection (the webhook call failed and failurePolicy Ignore hid it)`);
        } catch (err) {
          failures.push(`pod load-${i}: ${reason(err)}`);
        }
      }
    })();
    const policyLoop = (async () => {
      for (let i = 0; loading; i++) {
        try {
          await createPolicy(`load-${i}`);
          created.policies.push(Date.now());
        } catch (err) {
          failures.push(`policy load-${i}: ${reason(err)}`);
        }
      }
    })();

    // Sample, in this order, what the API server trusts and what each replica serves.
    type Sample = { at: number; trusted: string[]; served: X509Certificate[] };
    const samples: Sample[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const trusted = await publishedCas();
        const served = await Promise.all([servedCertificate(ports.a), servedCertificate(ports.b)]);
        samples.push({ at: Date.now(), trusted, served });
        await sleep(50);
      }
    })();

    let newCa = '';
    try {
      await sleep(1000);
      await kubectlOk(cp(), 'admin', ['annotate', 'secret', secretName, '-n', SYSTEM_NAMESPACE, `${ROTATE_ANNOTATION}=ca`]);
      await waitFor('both replicas serving a leaf from the new CA', 60_000, async () => {
        const secret = await readSecret();
        const ca = pem(secret, SECRET_KEYS.caCert);
        if (ca === oldCa) return undefined;
        newCa = ca;
        const served = await Promise.all([servedCertificate(ports.a), servedCertificate(ports.b)]);
        return served.every((c) => issuedBy(c, ca)) ? true : undefined;
      });
      // Keep admitting for a while on the new certificates.
      await sleep(2000);
    } finally {
      loading = false;
      sampling = false;
      await Promise.all([podLoop, policyLoop, sampler]);
    }

    assert.deepEqual(failures, [], 'no admission failed during the rotation');
    const switchedAt = samples.find((s) => s.served.some((c) => issuedBy(c, newCa)))?.at ?? Infinity;
    assert.ok(created.pods.some((t) => t > switchedAt) && created.policies.some((t) => t > switchedAt), 'pods and policies were admitted after the switch too');
    assert.ok(created.pods.length >= 5 && created.policies.length >= 5, `enough load: ${created.pods.length} pods, ${created.policies.length} policies`);

    const oldFp = new X509Certificate(oldCa).fingerprint256;
    const newFp = new X509Certificate(newCa).fingerprint256;
    // The invariant, sample by sample: nobody serves a leaf whose CA the API server does not trust.
    for (const s of samples) {
      for (const [i, leaf] of s.served.entries()) {
        const by = issuedBy(leaf, newCa) ? newFp : issuedBy(leaf, oldCa) ? oldFp : 'unknown';
        assert.ok(s.trusted.includes(by), `at ${new Date(s.at).toISOString()} replica ${'ab'[i]} served a leaf from a CA not in every caBundle`);
      }
    }
    const publishedAt = samples.find((s) => s.trusted.includes(newFp))?.at ?? Infinity;
    assert.ok(publishedAt < switchedAt, `the new CA was published (${publishedAt}) before any replica served it (${switchedAt})`);

    const secret = await readSecret();
    assert.equal(secret.metadata.annotations?.[ROTATE_ANNOTATION], undefined, 'the rotate request is consumed');
    assert.deepEqual(fingerprints(pem(secret, SECRET_KEYS.bundle)), [newFp, oldFp], 'the old CA stays trusted until it expires');
    assert.deepEqual(await publishedCas(), [newFp, oldFp]);
    assert.ok(proxy.counts.get(ports.a)! > 0 && proxy.counts.get(ports.b)! > 0, `the API server called both replicas: ${JSON.stringify([...proxy.counts])}`);
  });

  it('a restarted replica reuses the Secret: same CA, same leaf, no write', async function () {
    const before = await readSecret();
    await replicas.get('a')!.stop();
    await start('a');
    await sleep(1500); // more than one refresh interval
    const after = await readSecret();
    assert.equal(after.metadata.resourceVersion, before.metadata.resourceVersion, 'the Secret was not written');
    assert.equal((await servedCertificate(ports.a)).fingerprint256, new X509Certificate(pem(after, SECRET_KEYS.cert)).fingerprint256);
  });

  it('a caBundle stripped by replacing the configurations is restored within the refresh interval', async function () {
    const want = fingerprints(pem(await readSecret(), SECRET_KEYS.bundle));
    const t0 = Date.now();
    const stripped = await replaceConfigs(viaProxyWithoutCaBundle);
    // What the API server stored from the replace (the replicas may repair it before we could read it back).
    assert.ok(stripped.every((c) => c.webhooks.every((w) => w.clientConfig.caBundle === undefined)), 'the replace stripped every caBundle');
    await waitFor('the caBundle restored', 10_000, async () => {
      const have = await publishedCas();
      return have.length === want.length && have.every((fp, i) => fp === want[i]) ? true : undefined;
    });
    const ms = Date.now() - t0;
    assert.ok(ms < 5000, `restored in ${ms} ms (refresh interval ${REFRESH})`);
    const ns = await freshNamespace(cp(), { chaos: true });
    await waitFor('injection after the repair', 15_000, async () => ((await injectedDryRun(ns)) ? true : undefined));
  });
});

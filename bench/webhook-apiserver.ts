// What the webhook adds to a pod CREATE through a real kube-apiserver
// (controlplane/: etcd + kube-apiserver built from source, Faultline installed
// from manifests/, the webhook as its own process called by URL).
//
// Pods are created one at a time in two namespaces: one labelled
// faultline.dev/chaos=enabled (the API server calls the webhook, which
// injects) and one unlabelled (the namespaceSelector keeps the webhook out).
// Creates alternate A B B A … so that drift (etcd growing, apiserver caches,
// background load from other processes) hits both sides alike. The added cost
// is the difference of the two latency distributions' percentiles.
//
// The client is a bare keep-alive HTTPS connection with the admin's bearer
// token: kubectl would add ~100 ms of process start and discovery per create
// and bury a 2 ms effect.
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { startControlPlane } from '../controlplane/index.ts';
import { CHAOS_LABEL, CHAOS_LABEL_ENABLED, INJECTED_ANNOTATION, WEBHOOK_NAMES } from '../policies/wellknown.ts';
import { PROXY_CONTAINER_NAME } from '../contract/pod-layout.ts';
import { round, summarize } from './webhook-stats.ts';

const FIXTURE_POD = fileURLToPath(new URL('../test/fixtures/pods/02-deployment-two-containers.yaml', import.meta.url));

interface Answer {
  status: number;
  text: string;
  ms: number;
}

interface PodLike {
  metadata: { name?: string; annotations?: Record<string, string>; [k: string]: unknown };
  spec: { initContainers?: Array<{ name: string }>; containers: Array<{ name: string; env?: Array<{ name: string; value: string }>; [k: string]: unknown }>; [k: string]: unknown };
}

export interface ApiserverResult {
  podsPerNamespace: number;
  withWebhookP50Ms: number;
  withWebhookP90Ms: number;
  withWebhookP99Ms: number;
  withoutP50Ms: number;
  withoutP90Ms: number;
  withoutP99Ms: number;
  addedP50Ms: number;
  addedP99Ms: number;
  /** Measured creates in the labelled namespace whose response carried the injected proxy. */
  injectedResponses: number;
  /** Pods stored in the labelled namespace (warm-up included) that are injected, out of all stored there. */
  injectedStored: string;
  /** Measured creates in the unlabelled namespace that came back injected: must be 0. */
  injectedWithoutLabel: number;
  failures: number;
  /**
   * The API server's own count and mean of calls to the mutating webhook
   * during the measured creates (apiserver_admission_webhook_admission_duration_seconds):
   * an injected pod is admitted twice (reinvocationPolicy: IfNeeded, after the
   * ServiceAccount plugin mounts the token into the injected containers).
   */
  webhookCallsPerCreate: number;
  webhookMeanMsPerCall: number;
  /**
   * The webhook's own mean time per mutating review over the same creates
   * (faultline_admission_review_duration_seconds: body received to answer
   * written). webhookMeanMsPerCall minus this is the API server's side of a
   * call: building and encoding the AdmissionReview, TLS, decoding and
   * applying the patch. null when the webhook's metrics could not be read.
   */
  webhookServerMeanMsPerReview: number | null;
  controlPlaneStartS: number;
}

/**
 * A realistic pod, as both webhook benchmarks send it: test/fixtures'
 * Deployment pod (2 containers, probes, env, volumes) padded with the env a
 * real service carries to ~40 variables, ~6 KB.
 */
export function benchPod(): PodLike {
  const pod = parse(readFileSync(FIXTURE_POD, 'utf8')) as PodLike;
  const env = pod.spec.containers[0]!.env!;
  for (let i = 0; env.length < 40; i++) env.push({ name: `FEATURE_FLAG_${i}`, value: `checkout.feature-${i}.enabled=true;rollout=25` });
  return pod;
}

/** benchPod as a client sends it, before admission. */
function podTemplate(): PodLike {
  const pod = benchPod() as PodLike & { spec: { serviceAccountName?: string; volumes?: Array<{ name: string }> } };
  // The fixture is the pod *after* admission (token volume mounted, a named
  // ServiceAccount). Strip those so the ServiceAccount plugin does its usual
  // work here, as for a ReplicaSet's create.
  delete pod.metadata.generateName;
  delete pod.metadata.namespace;
  delete pod.spec.serviceAccountName;
  const token = (name: string): boolean => name.startsWith('kube-api-access-');
  pod.spec.volumes = pod.spec.volumes?.filter((v) => !token(v.name));
  for (const c of pod.spec.containers) {
    const mounts = (c.volumeMounts as Array<{ name: string }> | undefined)?.filter((m) => !token(m.name));
    if (mounts?.length) c.volumeMounts = mounts;
    else delete c.volumeMounts;
  }
  return pod;
}

const isInjected = (p: PodLike): boolean =>
  p.metadata.annotations?.[INJECTED_ANNOTATION] !== undefined && (p.spec.initContainers ?? []).some((c) => c.name === PROXY_CONTAINER_NAME);

export async function measureApiserver(opts: { pods: number; warmup: number; webhookCli?: string }): Promise<ApiserverResult> {
  const t0 = performance.now();
  // Progress to stderr only on trouble: stdout carries the one JSON object.
  const cp = await startControlPlane({ progress: (line) => process.stderr.write(`[controlplane] ${line}\n`), ...(opts.webhookCli ? { webhookCli: opts.webhookCli } : {}) });
  const controlPlaneStartS = round((performance.now() - t0) / 1000);
  try {
    const kc = cp.client('admin');
    const cluster = kc.getCurrentCluster()!;
    const token = kc.getCurrentUser()!.token!;
    const base = new URL(cluster.server);
    // One connection, reused for every create: no handshake in any sample.
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: Buffer.from(cluster.caData!, 'base64') });
    const call = (method: string, path: string, body?: object): Promise<Answer> => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      return new Promise((resolve, reject) => {
        const started = performance.now();
        const req = request(
          {
            host: base.hostname,
            port: base.port,
            path,
            method,
            agent,
            headers: {
              authorization: `Bearer ${token}`,
              accept: 'application/json',
              ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
            },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString(), ms: performance.now() - started }));
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end(payload);
      });
    };
    const must = async (method: string, path: string, body?: object): Promise<Answer> => {
      const a = await call(method, path, body);
      if (a.status >= 300) throw new Error(`${method} ${path}: HTTP ${a.status}: ${a.text.slice(0, 500)}`);
      return a;
    };

    const suffix = Math.random().toString(36).slice(2, 7);
    const chaosNs = `bench-chaos-${suffix}`;
    const plainNs = `bench-plain-${suffix}`;
    for (const [name, labels] of [
      [chaosNs, { [CHAOS_LABEL]: CHAOS_LABEL_ENABLED }],
      [plainNs, {}],
    ] as const) {
      await must('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
    }
    // Pods need the `default` ServiceAccount, which the control plane's
    // stand-in controller creates asynchronously.
    for (const ns of [chaosNs, plainNs]) {
      const deadline = Date.now() + 15_000;
      while ((await call('GET', `/api/v1/namespaces/${ns}/serviceaccounts/default`)).status !== 200) {
        if (Date.now() > deadline) throw new Error(`no default ServiceAccount in ${ns} after 15 s`);
        await sleep(50);
      }
    }

    const template = podTemplate();
    const podNamed = (name: string): PodLike => ({ ...template, metadata: { ...template.metadata, name } });
    // The API server picks up webhook configurations through an informer:
    // wait until a server-side dry run comes back injected, so no measured
    // create slips past a webhook that is not wired yet.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const a = await call('POST', `/api/v1/namespaces/${chaosNs}/pods?dryRun=All`, podNamed('probe'));
      if (a.status === 201 && isInjected(JSON.parse(a.text) as PodLike)) break;
      if (Date.now() > deadline) throw new Error(`the API server never returned an injected pod (last: HTTP ${a.status}): ${a.text.slice(0, 300)}`);
      await sleep(100);
    }

    const webhookCalls = async (): Promise<{ count: number; sumS: number }> => {
      const text = (await must('GET', '/metrics')).text;
      let count = 0;
      let sumS = 0;
      for (const line of text.split('\n')) {
        if (!line.startsWith('apiserver_admission_webhook_admission_duration_seconds_') || !line.includes(`name="${WEBHOOK_NAMES.mutatePods}"`)) continue;
        const value = Number(line.slice(line.lastIndexOf(' ') + 1));
        if (line.startsWith('apiserver_admission_webhook_admission_duration_seconds_count')) count += value;
        else if (line.startsWith('apiserver_admission_webhook_admission_duration_seconds_sum')) sumS += value;
      }
      return { count, sumS };
    };

    // The webhook's /metrics, trusted through the CA the control plane wrote
    // for it (controlplane/index.ts keeps it in <dir>/webhook-certs).
    const hookAgent = new Agent({ keepAlive: false, ca: readFileSync(join(cp.dir, 'webhook-certs', 'ca.crt')) });
    const webhookOwn = (): Promise<{ count: number; sumS: number } | null> =>
      new Promise((resolve) => {
        const req = request({ host: '127.0.0.1', port: cp.webhookPort, path: '/metrics', agent: hookAgent }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (d: string) => (text += d));
          res.on('end', () => {
            const sample = (suffix: string): number => {
              const line = text.split('\n').find((l) => l.startsWith(`faultline_admission_review_duration_seconds_${suffix}{`) && l.includes('handler="mutate-pods"'));
              return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : NaN;
            };
            const count = sample('count');
            resolve(res.statusCode === 200 && !Number.isNaN(count) ? { count, sumS: sample('sum') } : null);
          });
        });
        req.on('error', () => resolve(null));
        req.end();
      });

    const withHook: number[] = [];
    const without: number[] = [];
    let injectedResponses = 0;
    let injectedWithoutLabel = 0;
    let failures = 0;
    let before = { count: 0, sumS: 0 };
    let ownBefore: { count: number; sumS: number } | null = null;
    const total = opts.warmup + opts.pods;
    for (let i = 0; i < total; i++) {
      if (i === opts.warmup) [before, ownBefore] = await Promise.all([webhookCalls(), webhookOwn()]);
      const measured = i >= opts.warmup;
      // A B, then B A: each side goes first half the time.
      const order = i % 2 === 0 ? [chaosNs, plainNs] : [plainNs, chaosNs];
      for (const ns of order) {
        const a = await call('POST', `/api/v1/namespaces/${ns}/pods`, podNamed(`bench-${i}`));
        if (!measured) continue;
        if (a.status !== 201) {
          failures++;
          continue;
        }
        const injected = isInjected(JSON.parse(a.text) as PodLike);
        if (ns === chaosNs) {
          withHook.push(a.ms);
          if (injected) injectedResponses++;
        } else {
          without.push(a.ms);
          if (injected) injectedWithoutLabel++;
        }
      }
    }
    const [after, ownAfter] = await Promise.all([webhookCalls(), webhookOwn()]);

    const stored = (JSON.parse((await must('GET', `/api/v1/namespaces/${chaosNs}/pods`)).text) as { items: PodLike[] }).items;
    agent.destroy();

    const w = summarize(withHook);
    const o = summarize(without);
    const calls = after.count - before.count;
    return {
      podsPerNamespace: opts.pods,
      withWebhookP50Ms: w.p50Ms,
      withWebhookP90Ms: w.p90Ms,
      withWebhookP99Ms: w.p99Ms,
      withoutP50Ms: o.p50Ms,
      withoutP90Ms: o.p90Ms,
      withoutP99Ms: o.p99Ms,
      addedP50Ms: round(w.p50Ms - o.p50Ms),
      addedP99Ms: round(w.p99Ms - o.p99Ms),
      injectedResponses,
      injectedStored: `${stored.filter(isInjected).length}/${stored.length}`,
      injectedWithoutLabel,
      failures,
      webhookCallsPerCreate: round(calls / Math.max(1, withHook.length)),
      webhookMeanMsPerCall: round(calls ? ((after.sumS - before.sumS) * 1000) / calls : NaN),
      webhookServerMeanMsPerReview:
        ownBefore && ownAfter && ownAfter.count > ownBefore.count
          ? round(((ownAfter.sumS - ownBefore.sumS) * 1000) / (ownAfter.count - ownBefore.count))
          : null,
      controlPlaneStartS,
    };
  } finally {
    await cp.stop();
  }
}

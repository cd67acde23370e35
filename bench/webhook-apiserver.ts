// What the webhook adds to a pod CREATE through a real kube-apiserver
// (controlplane/: etcd + kube-apiserver built from source, Faultline installed
// from manifests/, the webhook as its own process called by URL).
//
// Pods are created one at a time, in four arms, in two namespaces: one labelled
// faultline.dev/chaos=enabled (the API server calls the webhook, which
// injects) and one unlabelled (the namespaceSelector keeps the webhook out).
//   hook      the pod in the labelled namespace: the webhook injects it, and
//             faultline-pod-security (a ValidatingAdmissionPolicy bound to chaos
//             namespaces, manifests/base/pod-security.yaml) checks the result;
//   optedOut  the same pod labelled faultline.dev/inject=false in the labelled
//             namespace: the objectSelector keeps the webhook out, the policy
//             still checks it;
//   plain     the pod in the unlabelled namespace: neither;
//   shape     the pod as the webhook leaves it, in the unlabelled namespace:
//             the bigger object alone (validation, storage, the answer).
// What the webhook adds is hook − optedOut: its call, the patch, and what the
// bigger pod costs everything after it. hook − plain adds the policy's check
// of a plain pod on top: what a chaos namespace costs. The arms rotate
// (A B C D, B C D A, …) so that drift (etcd growing, apiserver caches,
// background load from other processes) hits all alike; each figure is the
// difference of two latency distributions' percentiles, and `breakdown`
// splits them with the API server's own admission metrics.
//
// The client is a bare keep-alive HTTPS connection with the admin's bearer
// token: kubectl would add ~100 ms of process start and discovery per create
// and bury a 2 ms effect.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { startControlPlane } from '../controlplane/index.ts';
import { CHAOS_LABEL, CHAOS_LABEL_ENABLED, INJECT_OPT_OUT, INJECTED_ANNOTATION, WEBHOOK_NAMES } from '../policies/wellknown.ts';
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
  /** The same pod opted out by label in the labelled namespace (no webhook call, the policy still runs). */
  optedOutP50Ms: number;
  optedOutP90Ms: number;
  optedOutP99Ms: number;
  /** The same pod in the unlabelled namespace. */
  withoutP50Ms: number;
  withoutP90Ms: number;
  withoutP99Ms: number;
  /** What the webhook adds: hook − optedOut. The target. */
  addedP50Ms: number;
  addedP99Ms: number;
  /** What a chaos namespace adds: hook − plain (the webhook, plus faultline-pod-security on every pod). */
  namespaceAddedP50Ms: number;
  namespaceAddedP99Ms: number;
  /** Measured creates in the labelled namespace whose response carried the injected proxy. */
  injectedResponses: number;
  /** Pods stored in the labelled namespace (warm-up included) that are injected, out of all stored there. */
  injectedStored: string;
  /** Measured creates in the unlabelled namespace, or opted out, that came back injected: must be 0. */
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
  /**
   * Where the added time goes: the API server's admission metrics summed over
   * all measured creates (the plugins do next to nothing where no webhook or
   * binding matches), and the shape arm.
   */
  breakdown: {
    /** MutatingAdmissionWebhook plugin, per injected create (the webhook call, patch application included). */
    mutatingWebhookPluginMs: number;
    /** ValidatingAdmissionPolicy plugin, per create in the labelled namespace (hook and optedOut): faultline-pod-security's CEL. */
    validatingPolicyPluginMs: number;
    /** Creates of the already-injected pod in the unlabelled namespace, and their p50/p99 over the plain pod's. */
    injectedShapeP50Ms: number;
    injectedShapeP99Ms: number;
    podSizeAddedP50Ms: number;
    podSizeAddedP99Ms: number;
    /** Connections the API server opened to the webhook during the measured creates (0: every call reused a keep-alive connection). */
    webhookConnectionsOpened: number;
    /** The webhook's event-loop delay over the measured creates (nodejs_eventloop_lag_*). */
    webhookEventLoopDelayP99Ms: number | null;
    webhookEventLoopDelayMaxMs: number | null;
  };
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

    /** count and sum of one histogram's series whose labels include every `labels` pair. */
    const histogram = (text: string, name: string, labels: string[]): { count: number; sumS: number } => {
      let count = 0;
      let sumS = 0;
      for (const line of text.split('\n')) {
        if (!line.startsWith(`${name}_`) || !labels.every((l) => line.includes(l))) continue;
        const value = Number(line.slice(line.lastIndexOf(' ') + 1));
        if (line.startsWith(`${name}_count{`)) count += value;
        else if (line.startsWith(`${name}_sum{`)) sumS += value;
      }
      return { count, sumS };
    };
    const apiserverMetrics = async () => {
      const text = (await must('GET', '/metrics')).text;
      const create = 'operation="CREATE"';
      return {
        webhook: histogram(text, 'apiserver_admission_webhook_admission_duration_seconds', [`name="${WEBHOOK_NAMES.mutatePods}"`]),
        mutatingPlugin: histogram(text, 'apiserver_admission_controller_admission_duration_seconds', ['name="MutatingAdmissionWebhook"', create]),
        policyPlugin: histogram(text, 'apiserver_admission_controller_admission_duration_seconds', ['name="ValidatingAdmissionPolicy"', create]),
      };
    };
    type ApiserverMetrics = Awaited<ReturnType<typeof apiserverMetrics>>;

    // The API server's connections to the webhook, by their local port: one
    // opened mid-run is a TLS handshake inside some create's latency.
    const webhookPortHex = `:${cp.webhookPort.toString(16).toUpperCase().padStart(4, '0')}`;
    const connectionsToWebhook = async (): Promise<Set<string>> => {
      const ports = new Set<string>();
      for (const table of ['/proc/net/tcp', '/proc/net/tcp6'])
        for (const line of (await readFile(table, 'utf8').catch(() => '')).split('\n').slice(1)) {
          const [, local, remote, state] = line.trim().split(/\s+/);
          if (remote?.endsWith(webhookPortHex) && state === '01') ports.add(local!);
        }
      return ports;
    };

    // The webhook's /metrics, trusted through the CA the control plane wrote
    // for it (controlplane/index.ts keeps it in <dir>/webhook-certs).
    const hookAgent = new Agent({ keepAlive: false, ca: readFileSync(join(cp.dir, 'webhook-certs', 'ca.crt')) });
    // Also the webhook's event-loop delay (prom-client's default metrics, reset
    // at every scrape: the after-scrape covers the measured creates): a review
    // that arrives while the loop is busy (the cache decoding a pod watch
    // event, a GC) waits that long before its handler starts.
    const webhookOwn = (): Promise<{ count: number; sumS: number; lagP99S: number; lagMaxS: number } | null> =>
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
            const gauge = (name: string): number => {
              const line = text.split('\n').find((l) => l.startsWith(`${name} `));
              return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : NaN;
            };
            resolve(
              res.statusCode === 200 && !Number.isNaN(count)
                ? { count, sumS: sample('sum'), lagP99S: gauge('nodejs_eventloop_lag_p99_seconds'), lagMaxS: gauge('nodejs_eventloop_lag_max_seconds') }
                : null,
            );
          });
        });
        req.on('error', () => resolve(null));
        req.end();
      });

    // The shape arm: the pod as admission leaves it in the labelled namespace
    // (the dry run's answer, without what the API server itself sets), so it
    // costs the same to validate, store and return, but meets no webhook.
    const injected = JSON.parse((await must('POST', `/api/v1/namespaces/${chaosNs}/pods?dryRun=All`, podNamed('shape'))).text) as PodLike;
    const shape: PodLike = { ...injected, metadata: { labels: injected.metadata.labels as Record<string, string>, annotations: injected.metadata.annotations ?? {} } };
    delete (shape as { status?: unknown }).status;
    const shapeNamed = (name: string): PodLike => ({ ...shape, metadata: { ...shape.metadata, name } });

    const optOut = (name: string): PodLike => {
      const pod = podNamed(name);
      return { ...pod, metadata: { ...pod.metadata, labels: { ...(pod.metadata.labels as Record<string, string>), [INJECT_OPT_OUT]: 'false' } } };
    };
    const withHook: number[] = [];
    const optedOut: number[] = [];
    const without: number[] = [];
    const injectedShape: number[] = [];
    let injectedResponses = 0;
    let injectedWithoutLabel = 0;
    let failures = 0;
    let before: ApiserverMetrics | undefined;
    let ownBefore: Awaited<ReturnType<typeof webhookOwn>> = null;
    let connectionsBefore = new Set<string>();
    const opened = new Set<string>();
    const total = opts.warmup + opts.pods;
    for (let i = 0; i < total; i++) {
      // The connection snapshot first: the webhookOwn() scrape is a connection to the webhook port too.
      if (i === opts.warmup) {
        connectionsBefore = await connectionsToWebhook();
        [before, ownBefore] = await Promise.all([apiserverMetrics(), webhookOwn()]);
      }
      const measured = i >= opts.warmup;
      // Each arm takes each position in the order equally often.
      const arms = ['hook', 'optedOut', 'plain', 'shape'] as const;
      const order = arms.map((_, k) => arms[(i + k) % arms.length]!);
      for (const arm of order) {
        const a =
          arm === 'shape'
            ? await call('POST', `/api/v1/namespaces/${plainNs}/pods`, shapeNamed(`shape-${i}`))
            : arm === 'optedOut'
              ? await call('POST', `/api/v1/namespaces/${chaosNs}/pods`, optOut(`opted-out-${i}`))
              : await call('POST', `/api/v1/namespaces/${arm === 'hook' ? chaosNs : plainNs}/pods`, podNamed(`bench-${i}`));
        if (!measured) continue;
        if (a.status !== 201) {
          failures++;
          if (failures === 1) process.stderr.write(`[bench] ${arm} create: HTTP ${a.status}: ${a.text.slice(0, 300)}\n`);
          continue;
        }
        if (arm === 'shape') {
          injectedShape.push(a.ms);
          continue;
        }
        const injected = isInjected(JSON.parse(a.text) as PodLike);
        if (arm === 'optedOut') {
          optedOut.push(a.ms);
          if (injected) injectedWithoutLabel++;
        } else if (arm === 'hook') {
          withHook.push(a.ms);
          if (injected) injectedResponses++;
        } else {
          without.push(a.ms);
          if (injected) injectedWithoutLabel++;
        }
      }
      // Between creates, outside every sample: a keep-alive connection lives for
      // seconds, so one opened mid-run is seen here.
      if (measured) for (const p of await connectionsToWebhook()) if (!connectionsBefore.has(p)) opened.add(p);
    }
    const [after, ownAfter] = await Promise.all([apiserverMetrics(), webhookOwn()]);

    const stored = (JSON.parse((await must('GET', `/api/v1/namespaces/${chaosNs}/pods`)).text) as { items: PodLike[] }).items;
    agent.destroy();

    const w = summarize(withHook);
    const o = summarize(without);
    const shaped = summarize(injectedShape);
    const opted = summarize(optedOut);
    const calls = after.webhook.count - before!.webhook.count;
    const per = (k: keyof ApiserverMetrics, creates: number): number => round(((after[k].sumS - before![k].sumS) * 1000) / Math.max(1, creates));
    return {
      podsPerNamespace: opts.pods,
      withWebhookP50Ms: w.p50Ms,
      withWebhookP90Ms: w.p90Ms,
      withWebhookP99Ms: w.p99Ms,
      optedOutP50Ms: opted.p50Ms,
      optedOutP90Ms: opted.p90Ms,
      optedOutP99Ms: opted.p99Ms,
      withoutP50Ms: o.p50Ms,
      withoutP90Ms: o.p90Ms,
      withoutP99Ms: o.p99Ms,
      addedP50Ms: round(w.p50Ms - opted.p50Ms),
      addedP99Ms: round(w.p99Ms - opted.p99Ms),
      namespaceAddedP50Ms: round(w.p50Ms - o.p50Ms),
      namespaceAddedP99Ms: round(w.p99Ms - o.p99Ms),
      injectedResponses,
      injectedStored: `${stored.filter((p) => !p.metadata.name?.startsWith('opted-out-') && isInjected(p)).length}/${stored.filter((p) => !p.metadata.name?.startsWith('opted-out-')).length}`,
      injectedWithoutLabel,
      failures,
      webhookCallsPerCreate: round(calls / Math.max(1, withHook.length)),
      webhookMeanMsPerCall: round(calls ? ((after.webhook.sumS - before!.webhook.sumS) * 1000) / calls : NaN),
      webhookServerMeanMsPerReview:
        ownBefore && ownAfter && ownAfter.count > ownBefore.count
          ? round(((ownAfter.sumS - ownBefore.sumS) * 1000) / (ownAfter.count - ownBefore.count))
          : null,
      breakdown: {
        mutatingWebhookPluginMs: per('mutatingPlugin', withHook.length),
        validatingPolicyPluginMs: per('policyPlugin', withHook.length + optedOut.length),
        injectedShapeP50Ms: shaped.p50Ms,
        injectedShapeP99Ms: shaped.p99Ms,
        podSizeAddedP50Ms: round(shaped.p50Ms - o.p50Ms),
        podSizeAddedP99Ms: round(shaped.p99Ms - o.p99Ms),
        webhookConnectionsOpened: opened.size,
        webhookEventLoopDelayP99Ms: ownAfter ? round(ownAfter.lagP99S * 1000) : null,
        webhookEventLoopDelayMaxMs: ownAfter ? round(ownAfter.lagMaxS * 1000) : null,
      },
      controlPlaneStartS,
    };
  } finally {
    await cp.stop();
  }
}

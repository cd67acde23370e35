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
//             the bigger object alone (validation, storage, the answer);
//   null      the opted-out pod, labelled for a second, bench-only mutating
//             webhook (bench/null-webhook.ts) that answers every review with
//             the patch Faultline's webhook gave once: the same call, patch
//             and pod, with no planning or rendering behind it;
//   minimal   the opted-out pod, labelled for a third webhook (the same
//             server) that adds one label: a webhook call that changes
//             almost nothing.
// What the webhook adds is hook − optedOut: its call, the patch, and what the
// bigger pod costs everything after it. null − optedOut is what any webhook
// making that change costs; hook − null is what Faultline's adds beyond it.
// minimal − optedOut is what calling any mutating webhook costs, and
// null − minimal what making this change (the patch, the bigger pod) costs.
// hook − plain adds the policy's check of a plain pod on top: what a chaos
// namespace costs. The arms rotate
// (A B C D E, B C D E A, …) so that drift (etcd growing, apiserver caches,
// background load from other processes) hits all alike; each figure is the
// difference of two latency distributions' percentiles, and `breakdown`
// splits them with the API server's own admission metrics.
//
// BENCH_APISERVER_PPROF=<file> also saves the API server's CPU profile of
// the measured creates (`go tool pprof -top <file>`): where its side of a
// webhook call goes (matchConditions, patch application, decoding).
//
// The client is a bare keep-alive HTTPS connection with the admin's bearer
// token: kubectl would add ~100 ms of process start and discovery per create
// and bury a 2 ms effect.
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { startControlPlane } from '../controlplane/index.ts';
import { CHAOS_LABEL, CHAOS_LABEL_ENABLED, INJECT_OPT_OUT, INJECTED_ANNOTATION, WEBHOOK_NAMES } from '../policies/wellknown.ts';
import { PROXY_CONTAINER_NAME } from '../contract/pod-layout.ts';
import { MINIMAL_PATCH_LABEL, startNullWebhook } from './null-webhook.ts';
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
  /** The null arm: the same patch from a webhook that does nothing else (bench/null-webhook.ts). */
  nullWebhookP50Ms: number;
  nullWebhookP90Ms: number;
  nullWebhookP99Ms: number;
  /** What any webhook making Faultline's change adds: null − optedOut. */
  anyWebhookAddedP50Ms: number;
  anyWebhookAddedP99Ms: number;
  /** What Faultline's webhook adds beyond that: hook − null. */
  beyondNullP50Ms: number;
  beyondNullP99Ms: number;
  /** The API server's mean time per call to the null webhook (its side of a call with no work behind it). */
  nullWebhookMeanMsPerCall: number;
  /** The null webhook's own mean time per review (headers in to answer out), beside webhookServerMeanMsPerReview. */
  nullWebhookServerMeanMsPerReview: number | null;
  /** Measured null-arm creates whose response carried the injected proxy: must be all of them. */
  nullInjectedResponses: number;
  /** The minimal arm: a webhook that adds one label (bench/null-webhook.ts's minimalUrl). */
  minimalWebhookP50Ms: number;
  minimalWebhookP90Ms: number;
  minimalWebhookP99Ms: number;
  /** What calling any mutating webhook costs a CREATE: minimal − optedOut. */
  webhookCallAddedP50Ms: number;
  webhookCallAddedP99Ms: number;
  /** What making Faultline's change costs beyond a call: null − minimal (the patch, the bigger pod). */
  changeAddedP50Ms: number;
  changeAddedP99Ms: number;
  /** The API server's mean time per call to the minimal webhook. */
  minimalWebhookMeanMsPerCall: number;
  /** Measured minimal-arm creates whose response carried the minimal patch's label: must be all of them. */
  minimalTouchedResponses: number;
  /** The patch both webhooks return, in bytes. */
  patchBytes: number | null;
  /** What a chaos namespace adds: hook − plain (the webhook, plus faultline-pod-security on every pod). */
  namespaceAddedP50Ms: number;
  namespaceAddedP99Ms: number;
  /** Measured creates in the labelled namespace whose response carried the injected proxy. */
  injectedResponses: number;
  /** Pods of the hook and null arms stored in the labelled namespace (warm-up included) that are injected, out of all of them. */
  injectedStored: string;
  /** Measured creates in the unlabelled namespace, or opted out, that came back injected: must be 0. */
  injectedWithoutLabel: number;
  failures: number;
  /**
   * The API server's own count and mean of calls to the mutating webhook
   * during the measured creates (apiserver_admission_webhook_admission_duration_seconds):
   * 1 while the injection leaves the ServiceAccount plugin nothing to add
   * (more would be reinvocations, reinvocationPolicy: IfNeeded).
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
    /** MutatingAdmissionWebhook plugin, per create that calls a webhook (hook, null and minimal arms; the call, patch application included). */
    mutatingWebhookPluginMs: number;
    /** ValidatingAdmissionPolicy plugin, per create in the labelled namespace (hook, optedOut, null): faultline-pod-security's CEL. */
    validatingPolicyPluginMs: number;
    /** Creates of the already-injected pod in the unlabelled namespace, and their p50/p99 over the plain pod's. */
    injectedShapeP50Ms: number;
    injectedShapeP99Ms: number;
    podSizeAddedP50Ms: number;
    podSizeAddedP99Ms: number;
    /** Connections the API server opened to the webhook during the measured creates (0: every call reused a keep-alive connection). */
    webhookConnectionsOpened: number;
    /**
     * The webhook's event-loop delay over the measured creates, beyond the
     * 10 ms timer prom-client samples it with (nodejs_eventloop_lag_* count
     * that interval in: an idle loop reads 10 ms).
     */
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
  // A ReplicaSet's pod names its owner, which exists; here it would not, and
  // the garbage collector would delete every created pod during the run (a
  // DELETE and two watch events each, competing with the measured creates).
  delete pod.metadata.ownerReferences;
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

const PPROF_FILE = process.env.BENCH_APISERVER_PPROF;

/** prom-client's eventLoopMonitoringPrecision (its default; the webhook keeps it). */
const LAG_TIMER_MS = 10;

/** Selects the null arm's pods for bench/null-webhook.ts's configuration. */
const NULL_ARM_LABEL = 'bench.faultline.dev/null-webhook';
const NULL_WEBHOOK_NAME = 'null.bench.faultline.dev';
/** Selects the minimal arm's pods for the one-label webhook's configuration. */
const MINIMAL_ARM_LABEL = 'bench.faultline.dev/minimal-webhook';
const MINIMAL_WEBHOOK_NAME = 'minimal.bench.faultline.dev';

const isInjected = (p: PodLike): boolean =>
  p.metadata.annotations?.[INJECTED_ANNOTATION] !== undefined && (p.spec.initContainers ?? []).some((c) => c.name === PROXY_CONTAINER_NAME);

export async function measureApiserver(opts: { pods: number; warmup: number; webhookCli?: string }): Promise<ApiserverResult> {
  const t0 = performance.now();
  // Progress to stderr only on trouble: stdout carries the one JSON object.
  let nullHook: Awaited<ReturnType<typeof startNullWebhook>> | undefined;
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

    // The null arm's webhook: opted-out pods carrying NULL_ARM_LABEL in the
    // labelled namespace (Faultline's objectSelector keeps its own webhook out),
    // configured as Faultline's is but failing closed, so a broken baseline
    // shows as failures rather than as fast uninjected creates.
    const auth = cp.admissionAuth;
    if (!auth) throw new Error('the control plane started without admission client certificates');
    const webhookCerts = join(cp.dir, 'webhook-certs');
    const webhookCa = readFileSync(join(webhookCerts, 'ca.crt'), 'utf8');
    nullHook = await startNullWebhook({
      certDir: webhookCerts,
      forward: { url: `https://127.0.0.1:${cp.webhookPort}/mutate/pods`, caPem: webhookCa, certFile: auth.clientCertFile, keyFile: auth.clientKeyFile },
      stripLabels: [NULL_ARM_LABEL, INJECT_OPT_OUT],
    });
    for (const [name, url, label] of [
      [NULL_WEBHOOK_NAME, nullHook.url, NULL_ARM_LABEL],
      [MINIMAL_WEBHOOK_NAME, nullHook.minimalUrl, MINIMAL_ARM_LABEL],
    ] as const)
      await must('POST', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'MutatingWebhookConfiguration',
        metadata: { name },
        webhooks: [
          {
            name,
            clientConfig: { url, caBundle: Buffer.from(webhookCa).toString('base64') },
            rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }],
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': chaosNs } },
            objectSelector: { matchLabels: { [label]: 'true' } },
            failurePolicy: 'Fail',
            timeoutSeconds: 3,
            sideEffects: 'None',
            admissionReviewVersions: ['v1'],
            reinvocationPolicy: 'IfNeeded',
            matchPolicy: 'Equivalent',
          },
        ],
      });
    const optOut = (name: string): PodLike => {
      const pod = podNamed(name);
      return { ...pod, metadata: { ...pod.metadata, labels: { ...(pod.metadata.labels as Record<string, string>), [INJECT_OPT_OUT]: 'false' } } };
    };
    const optOutLabelled = (label: string) => (name: string): PodLike => {
      const pod = optOut(name);
      return { ...pod, metadata: { ...pod.metadata, labels: { ...(pod.metadata.labels as Record<string, string>), [label]: 'true' } } };
    };
    const nullArm = optOutLabelled(NULL_ARM_LABEL);
    const minimalArm = optOutLabelled(MINIMAL_ARM_LABEL);
    const isTouched = (p: PodLike): boolean => (p.metadata.labels as Record<string, string> | undefined)?.[MINIMAL_PATCH_LABEL] === 'true';
    for (const [what, arm, done] of [
      ['null webhook never injected', nullArm, isInjected],
      ['minimal webhook never added its label', minimalArm, isTouched],
    ] as const)
      for (;;) {
        const a = await call('POST', `/api/v1/namespaces/${chaosNs}/pods?dryRun=All`, arm('probe'));
        if (a.status === 201 && done(JSON.parse(a.text) as PodLike)) break;
        if (Date.now() > deadline) throw new Error(`the ${what} (last: HTTP ${a.status}): ${a.text.slice(0, 300)}`);
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
        nullWebhook: histogram(text, 'apiserver_admission_webhook_admission_duration_seconds', [`name="${NULL_WEBHOOK_NAME}"`]),
        minimalWebhook: histogram(text, 'apiserver_admission_webhook_admission_duration_seconds', [`name="${MINIMAL_WEBHOOK_NAME}"`]),
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

    const withHook: number[] = [];
    const optedOut: number[] = [];
    const without: number[] = [];
    const injectedShape: number[] = [];
    const viaNull: number[] = [];
    const viaMinimal: number[] = [];
    let injectedResponses = 0;
    let nullInjectedResponses = 0;
    let minimalTouchedResponses = 0;
    let injectedWithoutLabel = 0;
    let failures = 0;
    let before: ApiserverMetrics | undefined;
    let ownBefore: Awaited<ReturnType<typeof webhookOwn>> = null;
    let connectionsBefore = new Set<string>();
    const opened = new Set<string>();
    const total = opts.warmup + opts.pods;
    const warmupStarted = performance.now();
    let profile: Promise<void> | undefined;
    // Go's profiler samples for a fixed time: sized from the warm-up's pace
    // (90% of it) to end before the last create, so it covers measured ones only.
    const apiserverProfile = (seconds: number): Promise<void> =>
      new Promise((resolve, reject) => {
        const req = request(
          { host: base.hostname, port: base.port, path: `/debug/pprof/profile?seconds=${seconds}`, agent: new Agent({ keepAlive: false, ca: Buffer.from(cluster.caData!, 'base64') }), headers: { authorization: `Bearer ${token}` } },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              if (res.statusCode !== 200) reject(new Error(`the API server's /debug/pprof/profile: HTTP ${res.statusCode}: ${Buffer.concat(chunks).toString().slice(0, 300)}`));
              else writeFile(PPROF_FILE!, Buffer.concat(chunks)).then(resolve, reject);
            });
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end();
      });
    for (let i = 0; i < total; i++) {
      // The connection snapshot first: the webhookOwn() scrape is a connection to the webhook port too.
      if (i === opts.warmup) {
        connectionsBefore = await connectionsToWebhook();
        [before, ownBefore] = await Promise.all([apiserverMetrics(), webhookOwn()]);
        if (PPROF_FILE) {
          profile = apiserverProfile(Math.max(1, Math.floor((0.9 * opts.pods * (performance.now() - warmupStarted)) / opts.warmup / 1000)));
          profile.catch(() => {}); // awaited after the loop; not unhandled meanwhile
        }
      }
      const measured = i >= opts.warmup;
      // Each arm takes each position in the order equally often.
      const arms = ['hook', 'optedOut', 'plain', 'shape', 'null', 'minimal'] as const;
      const order = arms.map((_, k) => arms[(i + k) % arms.length]!);
      for (const arm of order) {
        const [ns, pod] = ({
          hook: [chaosNs, podNamed(`bench-${i}`)],
          optedOut: [chaosNs, optOut(`opted-out-${i}`)],
          plain: [plainNs, podNamed(`bench-${i}`)],
          shape: [plainNs, shapeNamed(`shape-${i}`)],
          null: [chaosNs, nullArm(`null-${i}`)],
          minimal: [chaosNs, minimalArm(`minimal-${i}`)],
        } as const satisfies Record<typeof arm, readonly [string, PodLike]>)[arm];
        const a = await call('POST', `/api/v1/namespaces/${ns}/pods`, pod);
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
        if (arm === 'minimal') {
          viaMinimal.push(a.ms);
          if (isTouched(JSON.parse(a.text) as PodLike)) minimalTouchedResponses++;
          continue;
        }
        const injected = isInjected(JSON.parse(a.text) as PodLike);
        if (arm === 'null') {
          viaNull.push(a.ms);
          if (injected) nullInjectedResponses++;
        } else if (arm === 'optedOut') {
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
    await profile;

    const stored = (JSON.parse((await must('GET', `/api/v1/namespaces/${chaosNs}/pods`)).text) as { items: PodLike[] }).items;
    // The hook and null arms' pods; the opted-out and minimal arms' stay uninjected.
    const meantInjected = (p: PodLike): boolean => !['opted-out-', 'minimal-'].some((prefix) => p.metadata.name?.startsWith(prefix));
    agent.destroy();

    const w = summarize(withHook);
    const o = summarize(without);
    const shaped = summarize(injectedShape);
    const opted = summarize(optedOut);
    const nul = summarize(viaNull);
    const minimal = summarize(viaMinimal);
    const calls = after.webhook.count - before!.webhook.count;
    const per = (k: keyof ApiserverMetrics, creates: number): number => round(((after[k].sumS - before![k].sumS) * 1000) / Math.max(1, creates));
    /** The API server's mean ms per call to one webhook over the measured creates (NaN without calls). */
    const msPerCall = (k: 'webhook' | 'nullWebhook' | 'minimalWebhook'): number => {
      const n = after[k].count - before![k].count;
      return round(n ? ((after[k].sumS - before![k].sumS) * 1000) / n : NaN);
    };
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
      nullWebhookP50Ms: nul.p50Ms,
      nullWebhookP90Ms: nul.p90Ms,
      nullWebhookP99Ms: nul.p99Ms,
      anyWebhookAddedP50Ms: round(nul.p50Ms - opted.p50Ms),
      anyWebhookAddedP99Ms: round(nul.p99Ms - opted.p99Ms),
      beyondNullP50Ms: round(w.p50Ms - nul.p50Ms),
      beyondNullP99Ms: round(w.p99Ms - nul.p99Ms),
      nullWebhookMeanMsPerCall: msPerCall('nullWebhook'),
      nullWebhookServerMeanMsPerReview: nullHook.meanServerMs === undefined ? null : round(nullHook.meanServerMs),
      nullInjectedResponses,
      minimalWebhookP50Ms: minimal.p50Ms,
      minimalWebhookP90Ms: minimal.p90Ms,
      minimalWebhookP99Ms: minimal.p99Ms,
      webhookCallAddedP50Ms: round(minimal.p50Ms - opted.p50Ms),
      webhookCallAddedP99Ms: round(minimal.p99Ms - opted.p99Ms),
      changeAddedP50Ms: round(nul.p50Ms - minimal.p50Ms),
      changeAddedP99Ms: round(nul.p99Ms - minimal.p99Ms),
      minimalWebhookMeanMsPerCall: msPerCall('minimalWebhook'),
      minimalTouchedResponses,
      patchBytes: nullHook.patchBytes ?? null,
      namespaceAddedP50Ms: round(w.p50Ms - o.p50Ms),
      namespaceAddedP99Ms: round(w.p99Ms - o.p99Ms),
      injectedResponses,
      injectedStored: `${stored.filter((p) => meantInjected(p) && isInjected(p)).length}/${stored.filter(meantInjected).length}`,
      injectedWithoutLabel,
      failures,
      webhookCallsPerCreate: round(calls / Math.max(1, withHook.length)),
      webhookMeanMsPerCall: msPerCall('webhook'),
      webhookServerMeanMsPerReview:
        ownBefore && ownAfter && ownAfter.count > ownBefore.count
          ? round(((ownAfter.sumS - ownBefore.sumS) * 1000) / (ownAfter.count - ownBefore.count))
          : null,
      breakdown: {
        mutatingWebhookPluginMs: per('mutatingPlugin', withHook.length + viaNull.length + viaMinimal.length),
        validatingPolicyPluginMs: per('policyPlugin', withHook.length + optedOut.length + viaNull.length),
        injectedShapeP50Ms: shaped.p50Ms,
        injectedShapeP99Ms: shaped.p99Ms,
        podSizeAddedP50Ms: round(shaped.p50Ms - o.p50Ms),
        podSizeAddedP99Ms: round(shaped.p99Ms - o.p99Ms),
        webhookConnectionsOpened: opened.size,
        webhookEventLoopDelayP99Ms: ownAfter ? round(ownAfter.lagP99S * 1000 - LAG_TIMER_MS) : null,
        webhookEventLoopDelayMaxMs: ownAfter ? round(ownAfter.lagMaxS * 1000 - LAG_TIMER_MS) : null,
      },
      controlPlaneStartS,
    };
  } finally {
    await nullHook?.close();
    await cp.stop();
  }
}

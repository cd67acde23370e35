// Helpers for webhook tests: an in-process HTTPS webhook with test certificates,
// an HTTPS client that trusts their CA, and AdmissionReview builders.
import { Agent, request } from 'node:https';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { createLogger } from '../../common/log.ts';
import { loadInjectionConfig, type InjectionConfig } from '../../webhook/injection-config.ts';
import type { CallerAuthConfig } from '../../webhook/caller-auth.ts';
import { startWebhookServer, type WebhookServer } from '../../webhook/server.ts';
import { makeTestCertificates, writeCertDir, type TestCertificates } from './webhook-tls.ts';

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

export interface TestWebhook {
  server: WebhookServer;
  port: number;
  certs: TestCertificates;
  certDir: string;
  config: InjectionConfig;
  post(path: string, body: string | Buffer, headers?: Record<string, string>): Promise<HttpAnswer>;
  get(path: string): Promise<HttpAnswer>;
  /** POSTs an AdmissionReview to /mutate/pods and returns the parsed response. */
  review(review: unknown): Promise<AdmissionReviewAnswer>;
  /** Current value of one sample in /metrics (0 when absent). */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

export interface AdmissionReviewAnswer {
  apiVersion: string;
  kind: string;
  response: {
    uid: string;
    allowed: boolean;
    patchType?: string;
    patch?: string;
    warnings?: string[];
    status?: { code?: number; message: string; reason?: string };
  };
}

export async function startTestWebhook(
  opts: { certPollIntervalMs?: number; handshakeTimeoutMs?: number; maxConnections?: number; callerAuth?: CallerAuthConfig } = {},
): Promise<TestWebhook> {
  const certs = await makeTestCertificates();
  const certDir = await writeCertDir(certs);
  const config = loadInjectionConfig({}, {});
  let server: WebhookServer;
  try {
    server = await startWebhookServer({
      certDir,
      port: 0,
      address: '127.0.0.1',
      injection: config,
      log: createLogger('webhook-test', process.env.FAULTLINE_LOG_LEVEL ?? 'silent'),
      ...(opts.certPollIntervalMs !== undefined ? { certPollIntervalMs: opts.certPollIntervalMs } : {}),
      ...(opts.handshakeTimeoutMs !== undefined ? { handshakeTimeoutMs: opts.handshakeTimeoutMs } : {}),
      ...(opts.maxConnections !== undefined ? { maxConnections: opts.maxConnections } : {}),
      ...(opts.callerAuth !== undefined ? { callerAuth: opts.callerAuth } : {}),
    });
  } catch (err) {
    await rm(certDir, { recursive: true, force: true });
    throw err;
  }
  const agent = new Agent({ ca: certs.ca, keepAlive: true, maxSockets: 4 });
  const call = (method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<HttpAnswer> =>
    httpsCall({ port: server.port, agent, method, path, headers, ...(body !== undefined ? { body } : {}) });
  const hook: TestWebhook = {
    server,
    port: server.port,
    certs,
    certDir,
    config,
    post: (path, body, headers = { 'content-type': 'application/json' }) => call('POST', path, body, headers),
    get: (path) => call('GET', path),
    async review(review) {
      const answer = await hook.post('/mutate/pods', JSON.stringify(review));
      if (answer.status !== 200) throw new Error(`review answered ${answer.status}: ${answer.text}`);
      return JSON.parse(answer.text) as AdmissionReviewAnswer;
    },
    async metric(name, labels = {}) {
      const text = (await hook.get('/metrics')).text;
      return readMetric(text, name, labels);
    },
    async close() {
      agent.destroy();
      try {
        await server.shutdown();
      } finally {
        await rm(certDir, { recursive: true, force: true });
      }
    },
  };
  return hook;
}

export function httpsCall(o: {
  port: number;
  agent?: Agent;
  ca?: Buffer;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: o.port, method: o.method, path: o.path, headers: o.headers ?? {}, ...(o.agent ? { agent: o.agent } : { ca: o.ca, agent: false }) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

/** Reads one sample from Prometheus text exposition; labels must match exactly the given subset. */
export function readMetric(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[4]);
  }
  return 0;
}

/** An AdmissionReview for a pod CREATE, as the API server sends it. */
export function podReview(
  pod: object,
  o: { namespace?: string; uid?: string; dryRun?: boolean; operation?: string } = {},
): { apiVersion: string; kind: string; request: Record<string, unknown> } {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: o.uid ?? randomUUID(),
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      namespace: o.namespace ?? 'shop',
      operation: o.operation ?? 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', groups: ['system:serviceaccounts'] },
      object: pod,
      oldObject: null,
      dryRun: o.dryRun ?? false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    },
  };
}

/** Decodes the base64 JSON Patch of an AdmissionReview answer ([] when none). */
export function decodePatch(answer: AdmissionReviewAnswer): unknown[] {
  if (answer.response.patch === undefined) return [];
  return JSON.parse(Buffer.from(answer.response.patch, 'base64').toString()) as unknown[];
}

// A minimal stand-in for kube-apiserver's admissionregistration.k8s.io/v1
// webhook-configuration endpoints (GET and PUT by name), with the semantics
// patchCaBundle relies on: resourceVersion optimistic concurrency (409 on a
// stale write), 404 Status for a missing object. The real API server is
// exercised by the e2e suite; this keeps the unit tests hermetic.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

const PREFIX = '/apis/admissionregistration.k8s.io/v1/';
export type Resource = 'mutatingwebhookconfigurations' | 'validatingwebhookconfigurations';

interface StoredObject {
  metadata: { name: string; resourceVersion: string };
  webhooks?: Array<{ name: string; clientConfig: { caBundle?: string; service?: unknown } }>;
  [key: string]: unknown;
}

export class FakeApiServer {
  readonly objects = new Map<string, StoredObject>();
  /** Every request, in order, as "METHOD resource/name". */
  readonly requests: string[] = [];
  /** Bodies of accepted and rejected PUTs. */
  readonly puts: StoredObject[] = [];
  /** Simulated concurrent writers: bump the resourceVersion right after this many GETs of a key. */
  readonly interfereAfterGet = new Map<string, number>();
  private server: Server | undefined;
  private version = 100;
  port = 0;

  put(resource: Resource, name: string, webhooks: StoredObject['webhooks']): void {
    this.objects.set(`${resource}/${name}`, { metadata: { name, resourceVersion: String(this.version++) }, webhooks });
  }

  get(resource: Resource, name: string): StoredObject | undefined {
    return this.objects.get(`${resource}/${name}`);
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => send(res, 500, status(500, 'InternalError', String(err))));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: `http://127.0.0.1:${this.port}`, skipTLSVerify: true }],
      users: [{ name: 'fake' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }],
      currentContext: 'fake',
    });
    return kc;
  }

  /** The same configuration as a kubeconfig file's YAML (JSON is valid YAML). */
  kubeConfigYaml(): string {
    return this.kubeConfig().exportConfig();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    if (!url.pathname.startsWith(PREFIX)) return send(res, 404, status(404, 'NotFound', `no route ${url.pathname}`));
    const key = url.pathname.slice(PREFIX.length);
    this.requests.push(`${req.method} ${key}`);
    const current = this.objects.get(key);
    if (!current) return send(res, 404, status(404, 'NotFound', `${key} not found`));
    if (req.method === 'GET') {
      const body = structuredClone(current);
      const left = this.interfereAfterGet.get(key);
      if (left !== undefined && left > 0) {
        this.interfereAfterGet.set(key, left - 1);
        current.metadata.resourceVersion = String(this.version++);
      }
      return send(res, 200, body);
    }
    if (req.method === 'PUT') {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as StoredObject;
      this.puts.push(body);
      if (body.metadata?.resourceVersion !== current.metadata.resourceVersion) {
        return send(res, 409, status(409, 'Conflict', `Operation cannot be fulfilled on ${key}: the object has been modified; please apply your changes to the latest version and try again`));
      }
      body.metadata.resourceVersion = String(this.version++);
      this.objects.set(key, body);
      return send(res, 200, body);
    }
    return send(res, 405, status(405, 'MethodNotAllowed', `${req.method} not supported`));
  }
}

function status(code: number, reason: string, message: string): object {
  return { kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message };
}

function send(res: ServerResponse, code: number, body: object): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

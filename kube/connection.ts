// Where the sidecar's API server is and how it authenticates: the in-cluster
// projected service-account token, or a kubeconfig for running the proxy
// outside a pod (tests, `faultline up`). Only what a service account needs is
// supported — a bearer token (a token file re-read as it rotates) or a client
// certificate, and a CA; anything else in a kubeconfig (exec plugins, auth
// providers, basic auth, impersonation, proxies) is refused with a clear error
// instead of being half-honoured. Why a hand-written client at all: see list-watch.ts.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { TOKEN_MOUNT_PATH } from '../contract/pod-layout.ts';

/**
 * How often a token file is re-read even without a 401. The kubelet rewrites a
 * projected token once 80% of its lifetime (10 minutes at the least) has
 * passed, so a minute is always early enough; client-go's file token source
 * re-reads every minute too.
 */
export const TOKEN_REREAD_MS = 60_000;

export interface KubeConnection {
  /** https://host:port, no path. */
  server: URL;
  /** PEM CA bundle; undefined trusts the system roots. */
  ca: Buffer | undefined;
  insecureSkipTLSVerify: boolean;
  /** Name checked against the server certificate instead of the host (kubeconfig `tls-server-name`). */
  tlsServerName: string | undefined;
  clientCert: Buffer | undefined;
  clientKey: Buffer | undefined;
  /** Bearer token, if any; see `TokenSource`. */
  token: TokenSource | undefined;
  /** For messages: where this came from. */
  origin: string;
}

export interface TokenSource {
  /** The current token (cached; a file is re-read every TOKEN_REREAD_MS). */
  get(): Promise<string>;
  /** The server said 401: the next `get` reads the file again. */
  invalidate(): void;
}

export function staticToken(token: string): TokenSource {
  return { get: async () => token, invalidate: () => {} };
}

/**
 * A token file as the kubelet maintains it (projected, rotating). Rotation
 * replaces the file atomically (symlink swap), so a whole read always sees one
 * token; the old one stays valid for a while after rotation, so re-reading a
 * minute late is harmless, and a 401 forces a re-read at once.
 */
export class FileToken implements TokenSource {
  readonly file: string;
  readonly #now: () => number;
  #cached: { token: string; readAt: number } | undefined;

  constructor(file: string, now: () => number = Date.now) {
    this.file = file;
    this.#now = now;
  }

  async get(): Promise<string> {
    const now = this.#now();
    if (this.#cached && now - this.#cached.readAt < TOKEN_REREAD_MS) return this.#cached.token;
    const token = (await readFile(this.file, 'utf8')).trim();
    if (token === '') throw new Error(`token file ${this.file} is empty`);
    this.#cached = { token, readAt: now };
    return token;
  }

  invalidate(): void {
    this.#cached = undefined;
  }
}

/**
 * The in-cluster connection: the proxy's own projected token volume (the
 * webhook mounts it at TOKEN_MOUNT_PATH, apart from Kubernetes' default path,
 * so it works with automountServiceAccountToken: false) and the API server
 * from KUBERNETES_SERVICE_HOST/PORT, as every in-cluster client finds it.
 */
export async function inClusterConnection(dir = TOKEN_MOUNT_PATH, env: NodeJS.ProcessEnv = process.env): Promise<KubeConnection> {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) throw new Error('not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset');
  const token = new FileToken(path.join(dir, 'token'));
  // Fail at start, not on the first request, when the volume is missing.
  await token.get();
  return {
    server: new URL(`https://${host.includes(':') ? `[${host}]` : host}:${port}`),
    ca: await readFile(path.join(dir, 'ca.crt')),
    insecureSkipTLSVerify: false,
    tlsServerName: undefined,
    clientCert: undefined,
    clientKey: undefined,
    token,
    origin: `in-cluster (${dir})`,
  };
}

/** What of a kubeconfig is read; unknown fields are listed so they can be refused. */
interface Kubeconfig {
  'current-context'?: string;
  contexts?: Array<{ name: string; context?: { cluster?: string; user?: string } }>;
  clusters?: Array<{ name: string; cluster?: Record<string, unknown> }>;
  users?: Array<{ name: string; user?: Record<string, unknown> }>;
}

const CLUSTER_FIELDS = new Set(['server', 'certificate-authority', 'certificate-authority-data', 'insecure-skip-tls-verify', 'tls-server-name', 'extensions']);
const USER_FIELDS = new Set(['token', 'tokenFile', 'client-certificate', 'client-certificate-data', 'client-key', 'client-key-data', 'extensions']);

/** Reads a kubeconfig file; relative paths in it are relative to the file, as kubectl resolves them. */
export async function kubeconfigConnection(file: string): Promise<KubeConnection> {
  // yaml is loaded only here: a pod (in-cluster) never parses YAML and should not carry the parser.
  // Through `default` (module.exports): the bundle inlines yaml, and a bundled
  // CommonJS package's dynamic import has no named exports.
  const { parse } = (await import('yaml')).default;
  const text = await readFile(file, 'utf8');
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new Error(`kubeconfig ${file}: not YAML: ${(err as Error).message}`);
  }
  return connectionFromKubeconfig(doc, file, path.dirname(path.resolve(file)));
}

/** The current context of a parsed kubeconfig; relative paths are resolved against `dir`. */
async function connectionFromKubeconfig(doc: unknown, origin: string, dir: string): Promise<KubeConnection> {
  const resolve = (p: string): string => path.resolve(dir, p);
  const fail = (msg: string): never => {
    throw new Error(`kubeconfig ${origin}: ${msg}`);
  };
  if (doc === null || typeof doc !== 'object') return fail('not a kubeconfig (expected a mapping)');
  const kc = doc as Kubeconfig;
  const contextName = kc['current-context'];
  if (!contextName) return fail('no current-context');
  const context = kc.contexts?.find((c) => c.name === contextName)?.context;
  if (!context) return fail(`current-context "${contextName}" is not among its contexts`);
  const cluster = kc.clusters?.find((c) => c.name === context.cluster)?.cluster;
  if (!cluster) return fail(`cluster "${context.cluster ?? ''}" of context "${contextName}" not found`);
  const user = context.user === undefined ? {} : kc.users?.find((u) => u.name === context.user)?.user;
  if (!user) return fail(`user "${context.user}" of context "${contextName}" not found`);

  const unsupported = [
    ...Object.keys(cluster).filter((k) => !CLUSTER_FIELDS.has(k)).map((k) => `cluster.${k}`),
    ...Object.keys(user).filter((k) => !USER_FIELDS.has(k)).map((k) => `user.${k}`),
  ];
  if (unsupported.length > 0) {
    fail(
      `${unsupported.join(', ')} not supported: faultline-proxy authenticates with a service-account token ` +
        '(token, tokenFile) or a client certificate only — no exec plugins, auth providers, basic auth, impersonation or proxies',
    );
  }

  const str = (o: Record<string, unknown>, k: string): string | undefined => {
    const v = o[k];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') return fail(`${k} must be a string`);
    return v;
  };
  /** `<name>-data` (base64) wins over `<name>` (a file path), as in client-go. */
  const material = async (o: Record<string, unknown>, name: string): Promise<Buffer | undefined> => {
    const data = str(o, `${name}-data`);
    if (data !== undefined) return Buffer.from(data, 'base64');
    const file = str(o, name);
    return file === undefined ? undefined : readFile(resolve(file));
  };

  const serverText = str(cluster, 'server') ?? fail(`cluster "${context.cluster}" has no server`);
  let server: URL;
  try {
    server = new URL(serverText);
  } catch {
    return fail(`server "${serverText}" is not a URL`);
  }
  if (server.protocol !== 'https:') fail(`server "${serverText}" is not https://`);
  if (server.pathname !== '/' && server.pathname !== '') fail(`server "${serverText}" has a path; not supported`);

  const token = str(user, 'token');
  const tokenFile = str(user, 'tokenFile');
  const clientCert = await material(user, 'client-certificate');
  const clientKey = await material(user, 'client-key');
  if ((clientCert === undefined) !== (clientKey === undefined)) fail('client-certificate and client-key go together');
  const insecure = cluster['insecure-skip-tls-verify'];
  if (insecure !== undefined && typeof insecure !== 'boolean') fail('insecure-skip-tls-verify must be a boolean');
  const ca = await material(cluster, 'certificate-authority');
  if (insecure === true && ca !== undefined) fail('certificate-authority and insecure-skip-tls-verify exclude each other');

  return {
    server: new URL(server.origin),
    ca,
    insecureSkipTLSVerify: insecure === true,
    tlsServerName: str(cluster, 'tls-server-name'),
    clientCert,
    clientKey,
    // tokenFile wins over a literal token, as in client-go (it is the one kept fresh).
    token: tokenFile !== undefined ? new FileToken(resolve(tokenFile)) : token !== undefined ? staticToken(token) : undefined,
    origin,
  };
}

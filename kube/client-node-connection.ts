// The webhook's connection for kube/client.ts, taken from the client-node
// KubeConfig it already holds for its writes (leases, Secrets, statuses), so
// both clients reach the same server as the same identity. The proxy never
// loads this module (test/unit/layout-boundaries.test.ts).
import type https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import type { KubeConnection, TokenSource } from './connection.ts';

/** What client-node's own request code would send: TLS material and the Authorization header. */
async function requestOptions(kc: KubeConfig): Promise<https.RequestOptions> {
  const opts: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  // It also builds an agent; KubeClient keeps its own keep-alive one.
  (opts.agent as https.Agent | undefined)?.destroy();
  return opts;
}

const asBuffer = (v: unknown): Buffer | undefined => (v === undefined || v === null ? undefined : Buffer.isBuffer(v) ? v : Buffer.from(String(v)));

/**
 * client-node's authenticators (a token file re-read as it rotates, exec
 * plugins, OIDC) stay in charge of the token: it is asked for each request.
 * Basic auth and impersonation are refused rather than silently dropped.
 */
export async function connectionFromKubeConfig(kc: KubeConfig): Promise<KubeConnection> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig: no current cluster');
  const server = new URL(cluster.server);
  if (server.protocol !== 'https:') throw new Error(`kubeconfig: server ${cluster.server} is not https://`);
  const user = kc.getCurrentUser();
  if (user?.username || user?.impersonateUser) throw new Error('kubeconfig: basic auth and impersonation are not supported');
  const opts = await requestOptions(kc);
  const bearer = (o: https.RequestOptions): string | undefined => {
    const header = (o.headers as Record<string, unknown> | undefined)?.Authorization;
    return typeof header === 'string' && header.startsWith('Bearer ') ? header.slice('Bearer '.length) : undefined;
  };
  const token: TokenSource | undefined =
    bearer(opts) === undefined
      ? undefined
      : {
          get: async () => bearer(await requestOptions(kc)) ?? '',
          // client-node re-reads token files on its own schedule and refreshes exec credentials when they expire.
          invalidate: () => {},
        };
  return {
    server: new URL(server.origin),
    ca: asBuffer(opts.ca),
    insecureSkipTLSVerify: opts.rejectUnauthorized === false,
    tlsServerName: opts.servername ?? undefined,
    clientCert: asBuffer(opts.cert),
    clientKey: asBuffer(opts.key),
    token,
    origin: `kubeconfig (${kc.getCurrentContext()})`,
  };
}

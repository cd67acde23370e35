// The HTTPS listener around the request listener (app.ts): certificate loading and hot
// reload, readiness, and graceful shutdown.
import { startChaosExport, type ChaosExport } from './otlp-export.ts';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node';
import { createLogger, type Logger } from '../common/log.ts';
import { createRequestListener, type WebhookContext } from './app.ts';
import type { ClusterCache } from './cache/cluster-cache.ts';
import type { InjectionConfig } from './injection-config.ts';
import { createMetrics } from './metrics.ts';
import type { Reconciler } from './reconciler/index.ts';
import { admissionRoutes } from './routes.ts';
import { connectionAuthenticator, type CallerAuthConfig } from './caller-auth.ts';
import { loadKeyPair, watchKeyPair } from './tls.ts';
import { HANDSHAKE_TIMEOUT_MS, MAX_CONNECTIONS, tlsServerOptions } from './tls-policy.ts';

export interface WebhookServerOptions {
  /** Directory holding tls.crt and tls.key (a mounted Secret, or `faultline certs` output). */
  certDir: string;
  /** 0 picks a free port (tests, benchmarks). */
  port: number;
  /** Default: all interfaces. */
  address?: string;
  injection: InjectionConfig;
  /** Cluster access: the informer cache behind the validating webhooks and policy-driven injection. */
  kubeConfig?: KubeConfig;
  /**
   * With a kubeConfig: run the status/RoleBinding reconciler under leader
   * election on a Lease in this namespace. Undefined: no reconciler.
   */
  leaseNamespace?: string;
  log?: Logger;
  /** Upper bound for in-flight reviews to finish on shutdown. */
  drainTimeoutMs?: number;
  /** Fallback re-read period of the certificate directory. */
  certPollIntervalMs?: number;
  /** Review endpoints answer only API servers presenting a certificate from this CA (issue 13 M2). */
  callerAuth?: CallerAuthConfig;
  /** Overrides of tls-policy.ts's bounds (tests). */
  handshakeTimeoutMs?: number;
  maxConnections?: number;
}

export interface WebhookServer {
  /** Bound port (useful with port 0). */
  port: number;
  context: WebhookContext;
  /** Stops accepting, lets in-flight reviews finish (bounded), closes every connection. Idempotent. */
  shutdown(): Promise<void>;
}

/**
 * The API server's webhook timeout is at most 30 s; a request still incomplete
 * after that is nobody's review, just a held socket.
 */
const REQUEST_TIMEOUT_MS = 30_000;
/**
 * Longer than the API server's 90 s idle timeout would race its reuse of a
 * connection we are closing; shorter than that it reconnects (one TLS handshake).
 */
const KEEP_ALIVE_TIMEOUT_MS = 60_000;

export async function startWebhookServer(opts: WebhookServerOptions): Promise<WebhookServer> {
  const log = opts.log ?? createLogger('webhook');
  const pair = await loadKeyPair(opts.certDir);
  const context: WebhookContext = {
    log,
    metrics: createMetrics(),
    state: { ready: false, draining: false },
    ...(opts.kubeConfig ? { kubeConfig: opts.kubeConfig } : {}),
  };
  const callerAuth = opts.callerAuth;
  if (callerAuth) context.authenticate = connectionAuthenticator(callerAuth);
  else
    log.warn(
      'client authentication is OFF: the review endpoints answer any caller that reaches the port, and their answers (denials, injected plans) ' +
        'describe tenants\' policies; set --client-ca-file and configure the API server\'s AdmissionConfiguration kubeConfigFile (docs/security.md)',
    );
  if (!opts.kubeConfig)
    log.info('no kubeconfig and not in a cluster: injecting without policy-driven faults; ChaosPolicy and ChaosTenant writes are refused');
  let cluster: ClusterCache | undefined;
  let reconciler: Reconciler | undefined;
  let chaosExport: ChaosExport | undefined;
  if (opts.kubeConfig) {
    // Loaded only with cluster access: the client library is large and slows every start.
    const { startClusterCache } = await import('./cache/cluster-cache.ts');
    cluster = await startClusterCache(opts.kubeConfig, log);
    if (opts.leaseNamespace !== undefined) {
      const [{ startReconciler }, { ChaosMetrics }] = await Promise.all([import('./reconciler/index.ts'), import('./reconciler/chaos-metrics.ts')]);
      chaosExport = await startChaosExport(log);
      reconciler = startReconciler({
        kubeConfig: opts.kubeConfig, cluster, log, leaseNamespace: opts.leaseNamespace, metrics: new ChaosMetrics(context.metrics.registry),
        ...(chaosExport ? { chaosSink: chaosExport.sink } : {}),
      });
    }
  }
  const routes = admissionRoutes(context, opts.injection, cluster);
  const listener = createRequestListener(context, routes);

  // Client certificates are requested, never required at the TLS layer: kubelet
  // probes and Prometheus have none, and the review routes check a
  // connection's certificate once, at its first review (caller-auth.ts).
  const clientAuth = callerAuth ? { requestCert: true, rejectUnauthorized: false, ca: callerAuth.caPem } : {};
  const secureContext = (p: { cert: string | Buffer; key: string | Buffer }) => ({ cert: p.cert, key: p.key, ...tlsServerOptions(), ...clientAuth });
  const server: Server = createServer({ ...secureContext(pair), handshakeTimeout: opts.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS }, listener);
  server.maxConnections = opts.maxConnections ?? MAX_CONNECTIONS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.on('tlsClientError', (err) => log.debug({ err: err.message }, 'TLS handshake failed'));

  const stopBackground = async (): Promise<void> => {
    await reconciler?.stop();
    cluster?.stop();
    await chaosExport?.shutdown();
  };
  await new Promise<void>((resolve, reject) => {
    const failed = (err: Error): void => void stopBackground().finally(() => reject(err));
    server.once('error', failed);
    server.listen(opts.port, opts.address, () => {
      server.off('error', failed);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err }, 'HTTPS server error'));
  const port = (server.address() as AddressInfo).port;

  const stopWatching = watchKeyPair({
    dir: opts.certDir,
    current: pair,
    log,
    ...(opts.certPollIntervalMs !== undefined ? { pollIntervalMs: opts.certPollIntervalMs } : {}),
    // Applies to new handshakes only; established connections keep their session.
    onChange: (next) => server.setSecureContext(secureContext(next)),
  });
  log.info({ port, address: opts.address ?? '0.0.0.0', routes: routes.map((r) => r.path), clientAuth: callerAuth !== undefined }, 'webhook listening');
  // Ready only on a synced cache: a review answered from a half-filled one
  // could deny a policy for a tenant not listed yet, or admit a conflicting tenant.
  if (!cluster) context.state.ready = true;
  else
    void cluster.synced().then(() => {
      if (context.state.draining) return;
      context.state.ready = true;
      log.info('cluster cache synced: ready');
    });

  let closing: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    closing ??= drain();
    return closing;
  };

  async function drain(): Promise<void> {
    const started = Date.now();
    context.state.draining = true;
    stopWatching();
    log.info('draining: listener closed, finishing in-flight reviews');
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // Meanwhile hand the lease over, so a successor leads while we drain; an
    // unreachable API server must not keep the listener open.
    const background = stopBackground().catch((err: unknown) => log.warn({ err }, 'stopping the cache and reconciler failed'));
    // server.close() ends idle keep-alive connections once; connections busy now
    // become idle when their answer is sent, so sweep until none are left.
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    const deadline = setTimeout(() => {
      log.warn({ drainTimeoutMs: opts.drainTimeoutMs ?? 10_000 }, 'drain timeout: closing remaining connections');
      server.closeAllConnections();
    }, opts.drainTimeoutMs ?? 10_000);
    try {
      await Promise.all([closed, background]);
    } finally {
      clearInterval(sweep);
      clearTimeout(deadline);
    }
    log.info({ ms: Date.now() - started }, 'webhook stopped');
  }

  return { port, context, shutdown };
}

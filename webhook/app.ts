// The webhook's HTTP surface: admission routes from a table, health, metrics,
// and the error mapping that turns every bad input into a JSON `{error}`
// answer. Reviews go straight to their endpoint (review-endpoint.ts); express
// serves the rest. It knows nothing about TLS or listening; server.ts owns that.
import express, { type NextFunction, type Request, type Response } from 'express';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../common/log.ts';
import type { Handler } from './admission.ts';
import type { WebhookMetrics } from './metrics.ts';
import { classifyError, createReviewEndpoint, type ReviewEndpoint } from './review-endpoint.ts';

/** Mutable serving state shared by the app (readyz, connection reuse) and the listener. */
export interface ServingState {
  /** Certificates loaded and listener bound. */
  ready: boolean;
  /** SIGTERM received: finish what is in flight, take nothing new. */
  draining: boolean;
}

export interface WebhookContext {
  log: Logger;
  metrics: WebhookMetrics;
  state: ServingState;
  /** Present with --kubeconfig or in a cluster; the policy cache will hang off it. */
  kubeConfig?: KubeConfig;
  /** With client authentication on: why a review's caller is refused, undefined when it is the API server. */
  authenticate?: (socket: TLSSocket) => string | undefined;
}

/**
 * One admission endpoint. Adding a webhook is one entry in the table passed to
 * createApp, e.g. `{ path: '/validate/chaospolicies', name: 'validate-chaospolicies', handler }`.
 */
export interface AdmissionRoute {
  path: string;
  /** Value of the `handler` metric label. */
  name: string;
  handler: Handler;
}

/**
 * The server's request listener. A POST to a review path goes to its endpoint
 * directly, past express (review-endpoint.ts says why); everything else, and a
 * review path spelled another way express would still match (a trailing
 * slash, other letter case), goes through express to the same endpoint.
 */
export function createRequestListener(ctx: WebhookContext, routes: readonly AdmissionRoute[]): RequestListener {
  const endpoints = new Map(routes.map((route) => [route.path, createReviewEndpoint(ctx, route)]));
  const app = createApp(ctx, routes, endpoints);
  return (req: IncomingMessage, res: ServerResponse) => {
    const endpoint = req.method === 'POST' ? endpoints.get(pathOf(req.url)) : undefined;
    if (endpoint) void endpoint(req, res);
    else app(req, res);
  };
}

/** The path of a request target: the API server calls `<path>?timeout=10s`. */
function pathOf(url: string | undefined): string {
  if (url === undefined) return '';
  const query = url.indexOf('?');
  return query < 0 ? url : url.slice(0, query);
}

function createApp(ctx: WebhookContext, routes: readonly AdmissionRoute[], endpoints: ReadonlyMap<string, ReviewEndpoint>): express.Express {
  const { log, metrics, state } = ctx;
  const app = express();
  // No ETag hashing of answers, no framework banner.
  app.set('etag', false);
  app.set('x-powered-by', false);

  app.use((_req: Request, res: Response, next: NextFunction) => {
    // Once draining, tell keep-alive clients to go elsewhere after this answer.
    if (state.draining) res.setHeader('Connection', 'close');
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', (_req, res) => {
    const ready = state.ready && !state.draining;
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : state.draining ? 'draining' : 'starting' });
  });
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  for (const route of routes) {
    const endpoint = endpoints.get(route.path)!;
    app.post(route.path, (req: Request, res: Response) => endpoint(req, res));
    app.all(route.path, (req, res) => {
      res.set('Allow', 'POST').status(405).json({ error: `${req.method} not allowed on ${route.path}; POST an AdmissionReview` });
    });
  }

  app.use((req: Request, res: Response) => {
    res.status(404).json({ error: `no route for ${req.method} ${req.path}` });
  });

  // Express 5 forwards rejected async handlers here too, so nothing escapes unlogged.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const { status, message } = classifyError(err);
    if (status >= 500) log.error({ err, path: req.path }, `request failed: ${message}`);
    else log.warn({ path: req.path, status, contentLength: req.get('content-length') }, `rejected request: ${message}`);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.status(status).json({ error: message });
  });

  return app;
}

// The express application: admission routes from a table, health, metrics, and
// the error mapping that turns every bad input into a JSON `{error}` answer.
// It knows nothing about TLS or listening; server.ts owns that.
import express, { type NextFunction, type Request, type Response } from 'express';
import type { TLSSocket } from 'node:tls';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../common/log.ts';
import { HttpError, parseReview, reviewResponse, verdictResult, type Handler } from './admission.ts';
import type { WebhookMetrics } from './metrics.ts';

/** Largest AdmissionReview accepted. The API server's own request limit is 3 MiB. */
export const MAX_REVIEW_BYTES = 3 * 1024 * 1024;

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

interface Locals {
  handler?: string;
  started?: number;
}

export function createApp(ctx: WebhookContext, routes: readonly AdmissionRoute[]): express.Express {
  const { log, metrics, state } = ctx;
  const app = express();
  // No ETag hashing of every review answer, no framework banner.
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

  const parseJson = express.json({ limit: MAX_REVIEW_BYTES, type: () => true, strict: false });
  for (const route of routes) {
    app.post(
      route.path,
      (req: Request, res: Response, next: NextFunction) => {
        (res.locals as Locals).handler = route.name;
        (res.locals as Locals).started = performance.now();
        // Before the body is read: an unauthenticated caller gets no review at all.
        const refused = ctx.authenticate?.(req.socket as TLSSocket);
        if (refused !== undefined) return next(new HttpError(401, `reviews are answered only for the API server's client certificate (${refused})`));
        // The API server always sends application/json; anything else is not a review.
        if (!req.is('application/json'))
          return next(new HttpError(415, `Content-Type must be application/json, got ${JSON.stringify(req.get('content-type') ?? '')}`));
        next();
      },
      parseJson,
      async (req: Request, res: Response) => {
        const request = parseReview(req.body);
        const verdict = await route.handler(request);
        res.json(reviewResponse(request.uid, verdict));
        observe(res, verdictResult(verdict));
      },
    );
    app.all(route.path, (req, res) => {
      res.set('Allow', 'POST').status(405).json({ error: `${req.method} not allowed on ${route.path}; POST an AdmissionReview` });
    });
  }

  app.use((req: Request, res: Response) => {
    res.status(404).json({ error: `no route for ${req.method} ${req.path}` });
  });

  // Express 5 forwards rejected async handlers here too, so nothing escapes unlogged.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const { status, message } = classify(err);
    if (status >= 500) log.error({ err, path: req.path }, `request failed: ${message}`);
    else log.warn({ path: req.path, status, contentLength: req.get('content-length') }, `rejected request: ${message}`);
    observe(res, status >= 500 ? 'error' : status === 401 ? 'unauthenticated' : 'bad_request');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.status(status).json({ error: message });
  });

  function observe(res: Response, result: string): void {
    const { handler, started } = res.locals as Locals;
    if (handler === undefined || started === undefined) return;
    metrics.reviews.inc({ handler, result });
    metrics.reviewDuration.observe({ handler }, (performance.now() - started) / 1000);
  }

  return app;
}

/** Maps our errors and body-parser's (which carry `type`/`status`) to a status and a message. */
function classify(err: unknown): { status: number; message: string } {
  if (err instanceof HttpError) return { status: err.status, message: err.message };
  const e = err as { type?: string; status?: number; message?: string; expose?: boolean };
  switch (e.type) {
    case 'entity.too.large':
      return { status: 413, message: `AdmissionReview body exceeds the ${MAX_REVIEW_BYTES / 1024 / 1024} MiB limit` };
    case 'entity.parse.failed':
      return { status: 400, message: `body is not valid JSON: ${e.message ?? ''}` };
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return { status: 415, message: e.message ?? 'unsupported encoding' };
  }
  if (typeof e.status === 'number' && e.status >= 400 && e.status < 500 && e.expose === true)
    return { status: e.status, message: e.message ?? 'bad request' };
  return { status: 500, message: err instanceof Error ? err.message : String(err) };
}

// The express application: admission routes from a table, health, metrics, and
// the error mapping that turns every bad input into a JSON `{error}` answer.
// It knows nothing about TLS or listening; server.ts owns that.
import express, { type NextFunction, type Request, type Response } from 'express';
import type { TLSSocket } from 'node:tls';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../common/log.ts';
import { encodeReviewResponse, HttpError, parseReview, verdictResult, type Handler } from './admission.ts';
import type { WebhookMetrics } from './metrics.ts';
import { readJsonBody } from './review-body.ts';

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

  for (const route of routes) {
    // One handler, not a middleware chain: each express layer costs a review
    // a router step, and the body is read by readJsonBody (review-body.ts).
    app.post(route.path, async (req: Request, res: Response) => {
      (res.locals as Locals).handler = route.name;
      (res.locals as Locals).started = performance.now();
      // Before the body is read: an unauthenticated caller gets no review at all.
      const refused = ctx.authenticate?.(req.socket as TLSSocket);
      if (refused !== undefined) throw new HttpError(401, `reviews are answered only for the API server's client certificate (${refused})`);
      // The API server always sends application/json; anything else is not a review.
      if (!isJson(req.headers['content-type']))
        throw new HttpError(415, `Content-Type must be application/json, got ${JSON.stringify(req.headers['content-type'] ?? '')}`);
      const request = parseReview(await readJsonBody(req, MAX_REVIEW_BYTES));
      const verdict = await route.handler(request);
      // One write: status line, headers and the whole answer (encodeReviewResponse).
      const answer = encodeReviewResponse(request.uid, verdict);
      res.writeHead(200, { 'content-type': JSON_CONTENT_TYPE, 'content-length': answer.length }).end(answer);
      observe(res, verdictResult(verdict));
    });
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

/** Maps our errors, and express's own 4xx (which carry `status` and `expose`), to a status and a message. */
function classify(err: unknown): { status: number; message: string } {
  if (err instanceof HttpError) return { status: err.status, message: err.message };
  const e = err as { status?: number; message?: string; expose?: boolean };
  if (typeof e.status === 'number' && e.status >= 400 && e.status < 500 && e.expose === true)
    return { status: e.status, message: e.message ?? 'bad request' };
  return { status: 500, message: err instanceof Error ? err.message : String(err) };
}

/** What express's res.json() sent, byte for byte. */
const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/** `application/json`, with or without parameters (req.is() would parse the header with two libraries per review). */
function isJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const semi = contentType.indexOf(';');
  return (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase() === 'application/json';
}

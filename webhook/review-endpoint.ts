// One admission review, on Node's own request and response: the caller check,
// the body, the handler's verdict, the answer, its metrics, and every bad
// input mapped to a JSON `{error}` answer. The API server's reviews reach it
// without express (app.ts's request listener): a review is one POST to a
// fixed path, and express's per-request work (its router, the req/res
// prototype swap) is a large share of what one costs. A bare HTTPS server
// that parses bench:webhook's review spent 117-144 µs of CPU per review alone
// and 155-215 µs behind express (2 runs each, Node 24). This endpoint and the
// answer sent as text (admission.ts) took the webhook to 0.83 of its CPU per
// review at max rate (8 interleaved rounds, 2026-11-26).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { encodeReviewResponse, HttpError, parseReview, verdictResult } from './admission.ts';
import type { AdmissionRoute, WebhookContext } from './app.ts';
import { readJsonBody } from './review-body.ts';

/** Largest AdmissionReview accepted. The API server's own request limit is 3 MiB. */
export const MAX_REVIEW_BYTES = 3 * 1024 * 1024;

/** What express's res.json() sent, byte for byte. */
const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

export type ReviewEndpoint = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/** Serves `route`'s reviews. The promise never rejects: every failure is answered (or the socket closed) and counted. */
export function createReviewEndpoint(ctx: WebhookContext, route: AdmissionRoute): ReviewEndpoint {
  const { log, metrics, state } = ctx;
  const observe = (result: string, started: number): void => {
    metrics.reviews.inc({ handler: route.name, result });
    metrics.reviewDuration.observe({ handler: route.name }, (performance.now() - started) / 1000);
  };
  return async (req, res) => {
    const started = performance.now();
    // Once draining, tell keep-alive clients to go elsewhere after this answer.
    if (state.draining) res.setHeader('Connection', 'close');
    try {
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
      res.writeHead(200, { 'content-type': JSON_CONTENT_TYPE, 'content-length': Buffer.byteLength(answer) }).end(answer);
      observe(verdictResult(verdict), started);
    } catch (err) {
      const { status, message } = classifyError(err);
      if (status >= 500) log.error({ err, path: route.path }, `request failed: ${message}`);
      else log.warn({ path: route.path, status, contentLength: req.headers['content-length'] }, `rejected request: ${message}`);
      observe(status >= 500 ? 'error' : status === 401 ? 'unauthenticated' : 'bad_request', started);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendJson(res, status, { error: message });
    }
  };
}

/** Maps our errors, and express's own 4xx (which carry `status` and `expose`), to a status and a message. */
export function classifyError(err: unknown): { status: number; message: string } {
  if (err instanceof HttpError) return { status: err.status, message: err.message };
  const e = err as { status?: number; message?: string; expose?: boolean };
  if (typeof e.status === 'number' && e.status >= 400 && e.status < 500 && e.expose === true)
    return { status: e.status, message: e.message ?? 'bad request' };
  return { status: 500, message: err instanceof Error ? err.message : String(err) };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const bytes = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': JSON_CONTENT_TYPE, 'content-length': bytes.length }).end(bytes);
}

/** `application/json`, with or without parameters (req.is() would parse the header with two libraries per review). */
function isJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const semi = contentType.indexOf(';');
  return (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase() === 'application/json';
}

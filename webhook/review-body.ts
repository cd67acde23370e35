// Reads an AdmissionReview's JSON body on the review routes, in place of
// express.json(): body-parser's stack (type-is, content-type, raw-body,
// iconv-lite, http-errors, on-finished) cost ~12% of a review's CPU at max rate
// besides the JSON.parse itself (cpu-prof, bench:webhook), for options a review
// never uses. The API server sends a review as one uncompressed UTF-8 JSON
// body with a Content-Length; anything else gets a clear 4xx.
import type { IncomingMessage } from 'node:http';
import { HttpError } from './admission.ts';

/**
 * The parsed body, or an HttpError: 413 over `limit` bytes, 415 for a
 * compressed body or a charset other than UTF-8, 400 for invalid JSON or a
 * client that went away mid-body (the API server's timeout or cancellation:
 * not a webhook failure). On an error the rest of the body is read off first,
 * as body-parser did, so the client gets the answer instead of a reset while
 * it is still sending.
 */
export function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const refused = headerProblem(req, limit);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    const aborted = (): void => reject(new HttpError(400, 'request aborted: the client closed the connection before the whole body arrived'));
    const fail = (err: HttpError): void => {
      req.off('data', onData);
      req.resume();
      if (req.complete) return reject(err);
      req.once('end', () => reject(err));
      req.once('error', aborted);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) tooLarge = true;
      else chunks.push(chunk);
    };
    if (refused) return fail(refused);
    req.on('data', onData);
    req.once('error', aborted);
    req.once('end', () => {
      if (tooLarge) return reject(tooLargeError(limit));
      const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      try {
        resolve(JSON.parse(bytes.toString('utf8')));
      } catch (err) {
        reject(new HttpError(400, `body is not valid JSON: ${(err as Error).message}`));
      }
    });
  });
}

function headerProblem(req: IncomingMessage, limit: number): HttpError | undefined {
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity')
    return new HttpError(415, `Content-Encoding ${JSON.stringify(encoding)} is not supported: send the AdmissionReview uncompressed`);
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(req.headers['content-type'] ?? '')?.[1]?.toLowerCase();
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') return new HttpError(415, `unsupported charset "${charset.toUpperCase()}": JSON is UTF-8`);
  const declared = Number(req.headers['content-length']);
  if (declared > limit) return tooLargeError(limit);
  return undefined;
}

const tooLargeError = (limit: number): HttpError => new HttpError(413, `AdmissionReview body exceeds the ${limit / 1024 / 1024} MiB limit`);

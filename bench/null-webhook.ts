// The cheapest webhook that makes the same change as Faultline's: the
// baseline arm of bench/webhook-apiserver.ts. What any injecting webhook
// costs a pod CREATE (the API server's call, applying the patch, the bigger
// pod) is its latency; what Faultline's webhook adds beyond that is the
// difference to the hook arm.
//
// It learns the patch once: the first review it gets is forwarded to
// Faultline's webhook (with the API server's client certificate, and without
// the labels that keep Faultline's webhook out of this arm), and its answer's
// patch is kept. Every later review is parsed for its uid, as any webhook
// must, and answered with that patch: no planning, no rendering, no checks.
// The one per-pod part is the ServiceAccount token volume's generated name
// (kube-api-access-xxxxx), which the patch mounts into the injected
// containers: it is swapped for the review's own.
//
// The same server also answers at `minimalUrl` with a one-label patch
// (MINIMAL_PATCH), for the bench's minimal arm: what a webhook call costs a
// CREATE whatever it changes, apart from what a change of this size costs.
import { readFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';

export interface NullWebhookOptions {
  /** tls.crt and tls.key: the certificate the API server already trusts for 127.0.0.1. */
  certDir: string;
  /** Faultline's webhook: its mutate URL, the CA of its serving certificate, and the API server's client certificate. */
  forward: { url: string; caPem: string; certFile: string; keyFile: string };
  /** Labels removed from the forwarded pod (the ones that select this arm and opt out of Faultline's webhook). */
  stripLabels: readonly string[];
}

/** The label the minimal arm's patch adds, so a create shows it went through that webhook. */
export const MINIMAL_PATCH_LABEL = 'bench.faultline.dev/touched';
const MINIMAL_PATCH = Buffer.from(JSON.stringify([{ op: 'add', path: `/metadata/labels/${MINIMAL_PATCH_LABEL.replace('/', '~1')}`, value: 'true' }])).toString('base64');

export interface NullWebhook {
  readonly url: string;
  /** Answers every review with MINIMAL_PATCH (the pod must have labels, as the arm's selector does). */
  readonly minimalUrl: string;
  /** The learned patch's size in bytes (decoded), once learned. */
  readonly patchBytes: number | undefined;
  /** Reviews answered from the learned patch. */
  readonly answered: number;
  /** Their mean time from the request's headers to the answer written, as Faultline's webhook times its reviews. */
  readonly meanServerMs: number | undefined;
  close(): Promise<void>;
}

interface Review {
  request?: { uid?: string; object?: { metadata?: { labels?: Record<string, string> }; spec?: { volumes?: Array<{ name?: string }> } } };
}

const tokenVolume = (review: Review): string | undefined =>
  review.request?.object?.spec?.volumes?.find((v) => v.name?.startsWith('kube-api-access-'))?.name;

const MAX_REVIEW_BYTES = 3 * 1024 * 1024;

export async function startNullWebhook(opts: NullWebhookOptions): Promise<NullWebhook> {
  let patch: string | undefined;
  let learning: Promise<string> | undefined;
  let learnedToken: string | undefined;
  let answered = 0;
  let serverMs = 0;

  const learn = (review: Review): Promise<string> => {
    learnedToken = tokenVolume(review);
    const labels = review.request?.object?.metadata?.labels;
    if (labels) for (const l of opts.stripLabels) delete labels[l];
    const body = Buffer.from(JSON.stringify(review));
    const target = new URL(opts.forward.url);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: target.hostname, port: target.port, path: target.pathname, method: 'POST',
          ca: opts.forward.caPem, cert: readFileSync(opts.forward.certFile), key: readFileSync(opts.forward.keyFile),
          headers: { 'content-type': 'application/json', 'content-length': body.length },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            const answer = (() => { try { return JSON.parse(text) as { response?: { patch?: string; patchType?: string } }; } catch { return undefined; } })();
            if (res.statusCode !== 200 || !answer?.response?.patch || answer.response.patchType !== 'JSONPatch')
              reject(new Error(`Faultline's webhook gave no JSONPatch to learn (HTTP ${res.statusCode}): ${text.slice(0, 300)}`));
            else resolve(answer.response.patch);
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  };

  const server: Server = createServer(
    { cert: readFileSync(`${opts.certDir}/tls.crt`), key: readFileSync(`${opts.certDir}/tls.key`) },
    (req, res) => {
      const started = performance.now();
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_REVIEW_BYTES) req.destroy(new Error('review over 3 MiB'));
        else chunks.push(c);
      });
      req.on('end', () => {
        void (async () => {
          try {
            const review = JSON.parse(Buffer.concat(chunks).toString()) as Review;
            const uid = review.request?.uid;
            if (typeof uid !== 'string') throw new Error('an AdmissionReview without request.uid');
            if (req.url?.startsWith('/minimal')) {
              const answer = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":${JSON.stringify(uid)},"allowed":true,"patchType":"JSONPatch","patch":"${MINIMAL_PATCH}"}}`;
              res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) }).end(answer);
              return;
            }
            const token = tokenVolume(review);
            const learned = patch !== undefined;
            const known = (patch ??= await (learning ??= learn(review)));
            const own =
              token === learnedToken || token === undefined || learnedToken === undefined
                ? known
                : Buffer.from(Buffer.from(known, 'base64').toString().replaceAll(`"${learnedToken}"`, `"${token}"`)).toString('base64');
            const answer = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":${JSON.stringify(uid)},"allowed":true,"patchType":"JSONPatch","patch":"${own}"}}`;
            res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) }).end(answer);
            if (learned) {
              answered++;
              serverMs += performance.now() - started;
            }
          } catch (err) {
            // Reached only by a broken review or a failed learn: the API server
            // shows the message (this arm's configuration fails closed).
            const message = err instanceof Error ? err.message : String(err);
            res.writeHead(500, { 'content-type': 'text/plain' }).end(message);
          }
        })();
      });
    },
  );
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}/mutate`,
    minimalUrl: `https://127.0.0.1:${port}/minimal`,
    get patchBytes() {
      return patch === undefined ? undefined : Buffer.from(patch, 'base64').length;
    },
    get answered() {
      return answered;
    },
    get meanServerMs() {
      return answered === 0 ? undefined : serverMs / answered;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

// The reconciler reads what each targeted pod's proxy applies: GET /status on
// the proxy's health port (contract/applied.ts), kept per pod and re-read
// while some policy targets the pod.
//
// Why the reconciler reads rather than the proxies writing (least privilege):
// - Reading needs no RBAC at all. A proxy writing its report would do it with
//   the pod's own ServiceAccount token (#13: the proxy has no identity of its
//   own), so every app container of the namespace could write it too. With
//   Events, any pod of the namespace could claim "applied" for any other pod;
//   here a pod can only speak for itself, from its own IP.
// - Nothing new is exposed: the port is the one the kubelet already probes,
//   and the report names policies every ServiceAccount of the namespace can
//   already read. It is GET-only and carries no secret.
// - Events age out (the API server's --event-ttl, 1 h by default): a report
//   stored as an Event would vanish under a long experiment.
// The cost: the reconciler must reach pod IPs on that port. A namespace with
// a default-deny NetworkPolicy has to admit faultline-system to it
// (docs/operations.md); until then the pods show as Unreachable and the
// condition Applied stays Unknown — never a false "Applied".
//
// Reads are paced per pod: at once when a pod is first targeted, then with
// backoff (250 ms doubling) while its report lags the policy's generation,
// then every refresh interval; a body over REPORT_LIMITS.bytes is refused.
import http from 'node:http';
import { decodeDatapathReport, REPORT_LIMITS } from '../../contract/applied.ts';
import type { PodReportState } from './applied-status.ts';

/** How the reconciler wants a pod's report: not at all, at the normal pace, or soon (it lags a policy's generation). */
export type Interest = 'none' | 'settled' | 'lagging';

export interface DatapathReportsOptions {
  /** A report changed (or first arrived, or the pod became unreachable): re-reconcile what targets it. */
  onChange: (namespace: string, pod: string) => void;
  interest: (namespace: string, pod: string) => Interest;
  refreshMs?: number;
  timeoutMs?: number;
}

interface PodEntry {
  url: string;
  state: PodReportState | undefined;
  timer: NodeJS.Timeout | undefined;
  dueAt: number;
  inflight: boolean;
  /** Consecutive reads that left the pod lagging or failed. */
  retries: number;
}

const FIRST_RETRY_MS = 250;

export class DatapathReports {
  readonly #opts: Required<DatapathReportsOptions>;
  readonly #pods = new Map<string, PodEntry>();
  #stopped = false;

  constructor(opts: DatapathReportsOptions) {
    this.#opts = { refreshMs: 15_000, timeoutMs: 2_000, ...opts };
  }

  get(namespace: string, pod: string): PodReportState | undefined {
    return this.#pods.get(`${namespace}/${pod}`)?.state;
  }

  /** The pod is targeted; `url` is its report (undefined: no IP yet). Reads soon when it lags. */
  want(namespace: string, pod: string, url: string | undefined, lagging: boolean): void {
    if (this.#stopped) return;
    const key = `${namespace}/${pod}`;
    let e = this.#pods.get(key);
    if (url === undefined) {
      if (e) this.#drop(key, e);
      return;
    }
    if (e && e.url !== url) {
      this.#drop(key, e);
      e = undefined;
    }
    if (!e) {
      e = { url, state: undefined, timer: undefined, dueAt: Infinity, inflight: false, retries: 0 };
      this.#pods.set(key, e);
    }
    const delay = e.state === undefined ? 0 : lagging ? this.#backoff(e) : this.#opts.refreshMs;
    this.#schedule(key, e, delay);
  }

  stop(): void {
    this.#stopped = true;
    for (const [key, e] of this.#pods) this.#drop(key, e);
  }

  #backoff(e: PodEntry): number {
    return Math.min(this.#opts.refreshMs, FIRST_RETRY_MS * 2 ** Math.min(e.retries, 10));
  }

  #drop(key: string, e: PodEntry): void {
    clearTimeout(e.timer);
    this.#pods.delete(key);
  }

  /** Keeps the earlier of the pending read and this one. */
  #schedule(key: string, e: PodEntry, delayMs: number): void {
    const at = Date.now() + delayMs;
    if (e.inflight || (e.timer && e.dueAt <= at)) return;
    clearTimeout(e.timer);
    e.dueAt = at;
    e.timer = setTimeout(() => void this.#read(key, e), delayMs);
    e.timer.unref();
  }

  async #read(key: string, e: PodEntry): Promise<void> {
    e.timer = undefined;
    e.dueAt = Infinity;
    e.inflight = true;
    let next: PodReportState;
    try {
      next = { report: decodeDatapathReport(await getText(e.url, this.#opts.timeoutMs)) };
    } catch (err) {
      next = { error: `cannot read the proxy's report at ${e.url}: ${(err as Error).message}` };
    }
    e.inflight = false;
    if (this.#stopped || this.#pods.get(key) !== e) return;
    const changed = JSON.stringify(next) !== JSON.stringify(e.state);
    e.state = next;
    const [namespace = '', pod = ''] = key.split('/');
    if (changed) this.#opts.onChange(namespace, pod);
    const interest = this.#opts.interest(namespace, pod);
    if (interest === 'none') return this.#drop(key, e);
    const troubled = interest === 'lagging' || next.error !== undefined;
    e.retries = troubled ? e.retries + 1 : 0;
    this.#schedule(key, e, troubled ? this.#backoff(e) : this.#opts.refreshMs);
  }
}

/** GET with a deadline and a size cap; a non-200 answer is an error. */
function getText(url: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: { accept: 'application/json' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`HTTP ${res.statusCode}`));
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > REPORT_LIMITS.bytes) return req.destroy(new Error(`report over ${REPORT_LIMITS.bytes} bytes`));
        chunks.push(c);
      });
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', reject);
    });
    // A deadline on the whole exchange that ends with it (an AbortSignal.timeout would outlive the request).
    const deadline = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('close', () => clearTimeout(deadline));
    req.on('error', reject);
  });
}

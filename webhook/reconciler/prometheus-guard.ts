// abortWhen.prometheus: the one guard condition the proxies can't judge (it
// looks at what a monitoring system sees, not at one pod's traffic), so the
// reconciler evaluates it. Every `interval`, per running policy generation, an
// instant query goes to the tenant-allowed Prometheus (<url>/api/v1/query); a
// sample above `above` is a breach, recorded as the same SteadyStateBreached
// notice a proxy writes (policies/abort-notice.ts): every proxy of the policy
// drops its faults, and the reconciler marks it Aborted.
//
// Failing open: an unreachable Prometheus or a malformed answer is logged and
// never aborts (nor keeps) anything by itself; the proxies' own conditions
// and the brakes still hold.
import http from 'node:http';
import https from 'node:https';
import { prometheusBase, PROMETHEUS_INTERVAL } from '../../policies/abort-when.ts';
import { durationMs } from '../../policies/duration.ts';
import type { ChaosPolicy } from '../../policies/types.ts';

/** The largest sample of an instant query's answer, or why there is none. Pure. */
export function queryValue(body: string): { value: number | undefined } | { error: string } {
  let r: { status?: unknown; error?: unknown; data?: { resultType?: unknown; result?: unknown } };
  try {
    r = JSON.parse(body) as typeof r;
  } catch {
    return { error: 'the answer is not JSON' };
  }
  if (r?.status !== 'success') return { error: `Prometheus answered ${String(r?.status)}: ${String(r?.error ?? '')}`.slice(0, 256) };
  const sample = (v: unknown): number => (Array.isArray(v) ? Number(v[1]) : NaN);
  const { resultType, result } = r.data ?? {};
  let values: number[];
  if (resultType === 'vector' && Array.isArray(result)) values = result.map((s: { value?: unknown }) => sample(s?.value));
  else if (resultType === 'scalar') values = [sample(result)];
  else return { error: `resultType ${String(resultType)} is not an instant vector or scalar` };
  const finite = values.filter((x) => Number.isFinite(x));
  return { value: finite.length > 0 ? Math.max(...finite) : undefined };
}

const MAX_ANSWER = 1024 * 1024;

/** GET <base>/api/v1/query?query=…, bounded in time and size. */
export function runQuery(url: string, query: string, timeoutMs: number): Promise<string> {
  const base = prometheusBase(url);
  if ('error' in base) return Promise.reject(new Error(`url ${base.error}`));
  const target = new URL(`${base.base}/api/v1/query`);
  target.searchParams.set('query', query);
  const get = target.protocol === 'https:' ? https.get : http.get;
  return new Promise((resolve, reject) => {
    const req = get(target, { agent: false, headers: { accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_ANSWER) req.destroy(new Error(`answer over ${MAX_ANSWER} bytes`));
        else chunks.push(c);
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

export interface PrometheusBreach {
  policy: ChaosPolicy;
  observed: number;
  threshold: number;
  intervalMs: number;
}

interface Watch {
  timer: NodeJS.Timeout;
  generation: string;
}

/** One timer per policy generation with a prometheus condition, while the policy runs. */
export class PrometheusGuards {
  readonly #watches = new Map<string, Watch>();
  readonly #onBreach: (b: PrometheusBreach) => void;
  readonly #onError: (key: string, message: string) => void;
  readonly #current: (key: string) => ChaosPolicy | undefined;

  constructor(opts: { current: (key: string) => ChaosPolicy | undefined; onBreach: (b: PrometheusBreach) => void; onError: (key: string, message: string) => void }) {
    this.#current = opts.current;
    this.#onBreach = opts.onBreach;
    this.#onError = opts.onError;
  }

  /** `running`: the policy's faults are on now; otherwise (or without the condition) its watch stops. */
  sync(key: string, policy: ChaosPolicy | undefined, running: boolean): void {
    const cond = policy?.spec.abortWhen?.prometheus;
    const generation = `${policy?.metadata.uid}/${policy?.metadata.generation}`;
    const existing = this.#watches.get(key);
    if (!cond || !running) return this.#stop(key);
    if (existing?.generation === generation) return;
    this.#stop(key);
    const intervalMs = cond.interval !== undefined ? durationMs(cond.interval) : PROMETHEUS_INTERVAL.defaultMs;
    const timer = setInterval(() => void this.#evaluate(key, generation, intervalMs), intervalMs);
    timer.unref();
    this.#watches.set(key, { timer, generation });
    void this.#evaluate(key, generation, intervalMs);
  }

  stop(): void {
    for (const key of [...this.#watches.keys()]) this.#stop(key);
  }

  #stop(key: string): void {
    const w = this.#watches.get(key);
    if (w) clearInterval(w.timer);
    this.#watches.delete(key);
  }

  async #evaluate(key: string, generation: string, intervalMs: number): Promise<void> {
    const policy = this.#current(key);
    const cond = policy?.spec.abortWhen?.prometheus;
    if (!policy || !cond || `${policy.metadata.uid}/${policy.metadata.generation}` !== generation) return;
    let result: ReturnType<typeof queryValue>;
    try {
      result = queryValue(await runQuery(cond.url, cond.query, Math.min(10_000, intervalMs)));
    } catch (err) {
      result = { error: (err as Error).message };
    }
    if (this.#watches.get(key)?.generation !== generation) return;
    if ('error' in result) return this.#onError(key, result.error);
    if (result.value !== undefined && result.value > cond.above) {
      this.#stop(key);
      this.#onBreach({ policy, observed: result.value, threshold: cond.above, intervalMs });
    }
  }
}

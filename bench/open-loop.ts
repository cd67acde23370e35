// Fixed-rate (open-loop) HTTP load for the benchmarks' latency figures at
// 1,000 req/s, from hack/controlplane/open-loop: vegeta's pacer and workers in
// a Go program, built by hack/controlplane/build.sh from the module proxy.
//
// Why not Node: against one trivial node:http server on loopback, 5,000 GETs at
// 1,000/s, a Node generator (performance.now() around http.get, 16 keep-alive
// sockets) measured p99 6.4–27 ms and vegeta 1.6–4.3 ms over three alternating
// runs (2026-11-26, 2 shared cores): the Node figure was mostly the
// generator's own event loop and GC, on top of a 1 ms target.
//
// What the figures mean: latency runs from when a vegeta worker took the
// request up to the end of its response body, waiting for a free connection
// included. Vegeta starts more workers when all are busy, so a slow server
// does not slow the sending down. Go's timers wake on a 1 ms grid here, so
// requests leave up to ~1 ms after their slot (sendLagMs, a sawtooth); that
// lateness is the generator's, not the server's, so it is reported apart
// (fromDueMs adds it back) and `keptUp` turns false when the generator fell
// behind (achieved rate under 99% of the target, or sendLagMs.p99 over 5 ms):
// then the latency figures are not the server's, and the benches say so.
import { ensureOpenLoop } from '../controlplane/binaries.ts';
import { exec } from '../test/support/netns-exec.ts';

export interface OpenLoopOptions {
  /** http:// or https:// */
  url: string;
  /** Requests per second, a whole number > 0. */
  rate: number;
  /** Requests to send: this or durationS. */
  count?: number;
  durationS?: number;
  /** Keep-alive connections at most (16). */
  connections?: number;
  method?: string;
  /** A file whose bytes are every request's body. */
  bodyFile?: string;
  headers?: Record<string, string>;
  /** PEM of the CA the server's certificate chains to (https). */
  caFile?: string;
  /** Before measuring: every connection opened, then this long at `rate`, discarded (0). */
  warmupS?: number;
  /** Run the generator in this network namespace (`ip netns exec`). */
  netns?: string;
}

export interface Quantiles {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** open-loop's JSON line (hack/controlplane/open-loop/main.go's report). Milliseconds, to the microsecond. */
export interface OpenLoopResult {
  /** e.g. "vegeta v12.13.0" */
  generator: string;
  url: string;
  method: string;
  connections: number;
  targetRate: number;
  requests: number;
  achievedRate: number;
  durationS: number;
  success: number;
  failures: number;
  statusCodes: Record<string, number>;
  firstError?: string;
  latencyMs: Quantiles;
  sendLagMs: Quantiles;
  fromDueMs: Quantiles;
  keptUp: boolean;
  keptUpReason?: string;
}

const positiveInt = (n: number | undefined): boolean => n !== undefined && Number.isSafeInteger(n) && n > 0;

/** The generator's arguments for `o`; a bad option is refused here, with what was wrong. */
export function openLoopArgs(o: OpenLoopOptions): string[] {
  let url: URL;
  try {
    url = new URL(o.url);
  } catch {
    throw new Error(`open-loop: url ${JSON.stringify(o.url)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`open-loop: url ${JSON.stringify(o.url)}: only http and https`);
  if (!positiveInt(o.rate)) throw new Error(`open-loop: rate ${o.rate}: must be a whole number of requests per second > 0`);
  if ((o.count === undefined) === (o.durationS === undefined)) throw new Error('open-loop: give exactly one of count and durationS');
  if (o.count !== undefined && !positiveInt(o.count)) throw new Error(`open-loop: count ${o.count}: must be a whole number > 0`);
  if (o.durationS !== undefined && !(o.durationS > 0)) throw new Error(`open-loop: durationS ${o.durationS}: must be > 0`);
  if (o.connections !== undefined && !positiveInt(o.connections)) throw new Error(`open-loop: connections ${o.connections}: must be a whole number > 0`);
  if (o.warmupS !== undefined && !(o.warmupS >= 0)) throw new Error(`open-loop: warmupS ${o.warmupS}: must be >= 0`);
  for (const name of Object.keys(o.headers ?? {})) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw new Error(`open-loop: header name ${JSON.stringify(name)} is not an HTTP token`);
  }
  return [
    '-url', o.url,
    '-rate', String(o.rate),
    ...(o.count !== undefined ? ['-count', String(o.count)] : ['-duration', `${o.durationS}s`]),
    '-connections', String(o.connections ?? 16),
    ...(o.method ? ['-method', o.method] : []),
    ...(o.bodyFile ? ['-body', o.bodyFile] : []),
    ...Object.entries(o.headers ?? {}).flatMap(([k, v]) => ['-header', `${k}: ${v}`]),
    ...(o.caFile ? ['-ca', o.caFile] : []),
    ...(o.warmupS ? ['-warmup', `${o.warmupS}s`] : []),
  ];
}

const isQuantiles = (q: unknown): q is Quantiles =>
  typeof q === 'object' && q !== null && ['p50', 'p90', 'p99', 'p999', 'max'].every((k) => Number.isFinite((q as Record<string, unknown>)[k]));

/** The generator's stdout as a result; anything else than one complete report is an error quoting it. */
export function parseOpenLoopReport(stdout: string): OpenLoopResult {
  const text = stdout.trim();
  let r: Partial<OpenLoopResult>;
  try {
    r = JSON.parse(text) as Partial<OpenLoopResult>;
  } catch {
    throw new Error(`open-loop printed no JSON report: ${JSON.stringify(text.slice(0, 300))}`);
  }
  const numbers = ['connections', 'targetRate', 'requests', 'achievedRate', 'durationS', 'success', 'failures'] as const;
  const bad = [
    ...numbers.filter((k) => typeof r?.[k] !== 'number'),
    ...(['latencyMs', 'sendLagMs', 'fromDueMs'] as const).filter((k) => !isQuantiles(r?.[k])),
    ...(typeof r?.keptUp !== 'boolean' ? ['keptUp'] : []),
    ...(typeof r?.generator !== 'string' ? ['generator'] : []),
  ];
  if (bad.length > 0) throw new Error(`open-loop's report lacks ${bad.join(', ')}: ${JSON.stringify(text.slice(0, 300))}`);
  if (r.success! + r.failures! !== r.requests) throw new Error(`open-loop's report does not add up: ${r.success} + ${r.failures} != ${r.requests} requests`);
  return r as OpenLoopResult;
}

/** Runs the generator (built first if missing or stale) and returns its report. Failed requests are counted, not thrown. */
export async function openLoop(o: OpenLoopOptions): Promise<OpenLoopResult> {
  const args = openLoopArgs(o);
  const bin = await ensureOpenLoop();
  const argv = o.netns ? ['ip', 'netns', 'exec', o.netns, bin, ...args] : [bin, ...args];
  // The run's own length, plus the per-request timeout (10 s) and slack: a hung generator is killed, not waited on.
  const seconds = (o.durationS ?? o.count! / o.rate) + (o.warmupS ?? 0);
  const r = await exec(argv, { env: { PATH: process.env.PATH }, timeoutMs: (2 * seconds + 30) * 1000 });
  if (r.code !== 0) throw new Error(`open-loop exited ${r.code}: ${r.stderr.trim() || r.stdout.trim() || '(no output)'}\n  ${argv.join(' ')}`);
  return parseOpenLoopReport(r.stdout);
}

/**
 * What keeps a bench's fixed-rate runs from being read: `behind`, the runs
 * whose generator could not hold its rate ("<url>: <reason>"), whose latencies
 * are not the server's; and `failed`, the first run with failed requests,
 * which is a miss.
 */
export function unreadableRuns(runs: readonly OpenLoopResult[]): { behind: string[]; failed?: OpenLoopResult } {
  const failed = runs.find((r) => r.failures > 0);
  return { behind: runs.filter((r) => !r.keptUp).map((r) => `${r.url}: ${r.keptUpReason}`), ...(failed ? { failed } : {}) };
}

/** How a bench names the generator next to its figures. */
export const describeGenerator = (r: OpenLoopResult): string => `${r.generator}, ${r.connections} connections`;

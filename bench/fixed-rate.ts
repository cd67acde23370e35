// Open-loop load at a fixed rate, latency per request measured with
// performance.now() (autocannon's histogram has 1 ms resolution, too coarse
// for a 0.25 ms target). Shared by bench/sidecar.ts and bench/capture-pod.ts.

import http from 'node:http';

/** `total` GETs of `url` started at `rate`/s over up to 16 keep-alive sockets; latencies in ms, sorted. */
export async function fixedRate(url: string, rate: number, total: number): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const lat: number[] = [];
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const t0 = performance.now();
      http
        .get(url, { agent }, (res) => {
          res.resume();
          res.on('end', () => {
            lat.push(performance.now() - t0);
            resolve();
          });
        })
        .on('error', reject);
    });
  const pending: Promise<void>[] = [];
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const wait = start + (i * 1000) / rate - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    pending.push(one());
  }
  await Promise.all(pending);
  agent.destroy();
  return lat.sort((a, b) => a - b);
}

export function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

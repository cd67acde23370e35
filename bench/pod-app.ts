// What the proxy benches that run one app behind a fresh proxy per round share
// (bench/proxy-flags.ts, bench/malloc-release.ts): the load generator, the
// programs, the app, and how a process's memory is read.

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type AutocannonResult = { requests: { average: number; total: number }; non2xx: number; errors: number };
// autocannon ships no types; this is the slice used here.
export const autocannon = createRequire(import.meta.url)('autocannon') as (opts: Record<string, unknown>) => PromiseLike<AutocannonResult>;

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const NODE = path.join(ROOT, 'node_modules', '.bin', 'node');
/** What the images run: images/build.ts's bundle. */
export const CLI = path.join(ROOT, 'dist', 'faultline.js');

/** An HTTP app answering 'ok' to everything on `port` in the pod; prints "app ready" once listening. */
export const okApp = (port: number): string => `
import http from 'node:http';
const s = http.createServer({ keepAliveTimeout: 60000 }, (req, res) => { res.setHeader('content-type', 'text/plain'); res.end('ok'); });
s.listen(${port}, '0.0.0.0', () => console.log('app ready'));
`;

/** VmRSS and VmHWM (the kernel's high-water mark since the process started) of a process, MB to 0.1. */
export async function rssMB(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const mb = (field: string): number => Math.round(Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) / 102.4) / 10;
  return { rss: mb('VmRSS'), peak: mb('VmHWM') };
}

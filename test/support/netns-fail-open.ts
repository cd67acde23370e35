// Shared by test/netns/fail-open.test.ts and bench/fail-open.ts: what a client
// sees when the proxy dies, and the containers' JSON log lines as times.
import { FAIL_OPEN_CONTAINER_NAME, PROXY_CONTAINER_NAME } from '../../contract/pod-layout.ts';
import { NODE } from './netns-fixtures.ts';
import { POD_IP, type SimulatedPod } from './netns-pod.ts';

export interface LogLine {
  /** ms: the watcher logs epoch ms, the proxy (pino) an ISO timestamp. */
  time: number;
  msg: string;
}

export function logLines(text: string): LogLine[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { time: number | string; msg: string })
    .map((l) => ({ msg: l.msg, time: typeof l.time === 'number' ? l.time : Date.parse(l.time) }));
}

export const watcherLog = (pod: SimulatedPod): LogLine[] => logLines(pod.proc(FAIL_OPEN_CONTAINER_NAME).stdout);
export const proxyLog = (pod: SimulatedPod): LogLine[] => logLines(pod.proc(PROXY_CONTAINER_NAME).stdout);

export async function until<T>(what: string, get: () => T | undefined, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = get();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export interface ProbeResult {
  /** When the app itself first answered (the proxy answers /faulted with its abort). */
  directAt: number;
  /** Attempts refused on the way (nothing listening). */
  failed: number;
  /** Answers from the proxy before that. */
  captured: number;
}

/**
 * Starts a client in the client namespace that asks the pod's port for
 * /faulted every 2 ms until the app itself answers; `result` settles then
 * (or rejects after 10 s). Resolves once it is probing.
 */
export async function probeUntilDirect(pod: SimulatedPod, port: number): Promise<{ result: Promise<ProbeResult> }> {
  const script = `
const http = require('http');
let failed = 0, captured = 0;
const deadline = Date.now() + 10000;
function once() {
  if (Date.now() > deadline) { console.log(JSON.stringify({ timeout: true, failed, captured })); process.exit(1); }
  const req = http.get({ host: '${POD_IP}', port: ${port}, path: '/faulted', agent: false }, (res) => {
    let body = '';
    res.on('data', (d) => (body += d));
    res.on('end', () => {
      if (res.statusCode === 200 && body.startsWith('app ${port}')) { console.log(JSON.stringify({ directAt: Date.now(), failed, captured })); process.exit(0); }
      captured++;
      setTimeout(once, 2);
    });
  });
  req.on('error', () => { failed++; setTimeout(once, 2); });
}
console.log('probing');
once();
`;
  const prober = pod.spawnClient('prober', [NODE, '-e', script]);
  await until('the prober', () => (prober.stdout.includes('probing') ? true : undefined));
  return {
    result: prober.exited.then((code) => {
      if (code !== 0) throw new Error(`prober exited ${code}: ${prober.stdout}${prober.stderr}`);
      return JSON.parse(prober.stdout.split('\n')[1]!) as ProbeResult;
    }),
  };
}

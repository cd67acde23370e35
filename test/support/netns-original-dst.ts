// Runs inside a test namespace whose nft redirects some destinations to
// <listenPort>: listens dual-stack on <listenPort>, connects once to each
// <host>:<port> given, and prints one JSON line per accepted connection with
// what originalDestination() read from it (the client's target included, so
// the test can pair them).
//   connect <listenPort> <target>...     e.g. connect 15001 10.99.0.2:7000 [fd99::2]:7000
//   bench <listenPort> <target> <count>  time originalDestination() on <count> redirected connections
import net from 'node:net';
import { originalDestination } from '../../sidecar/capture/original-destination.ts';

const [mode, listenArg, ...rest] = process.argv.slice(2);
const listenPort = Number(listenArg);

function parseTarget(t: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(t);
  if (!m) throw new Error(`bad target ${t}`);
  return { host: m[1]!, port: Number(m[2]) };
}

function listen(onSocket: (s: net.Socket) => void): Promise<net.Server> {
  const server = net.createServer((s) => {
    s.on('error', () => undefined); // a client closing first resets: not what is measured
    onSocket(s);
  });
  return new Promise((resolve) => server.listen({ port: listenPort, host: '::', ipv6Only: false }, () => resolve(server)));
}

/** Connects, names its target, waits for the server's answer and closes. */
function connectOnce(target: string): Promise<void> {
  const { host, port } = parseTarget(target);
  return new Promise((resolve, reject) => {
    const c = net.connect({ host, port });
    c.once('error', reject);
    c.once('connect', () => c.write(target));
    c.once('data', () => {
      c.destroy();
      resolve();
    });
  });
}

if (mode === 'connect') {
  const server = await listen((s) => {
    s.once('data', (d) => {
      console.log(JSON.stringify({ target: d.toString(), local: { address: s.localAddress, port: s.localPort }, result: originalDestination(s) }));
      s.end('ok');
    });
  });
  for (const target of rest) await connectOnce(target);
  server.close();
} else if (mode === 'bench') {
  const [target, countArg] = rest;
  const count = Number(countArg);
  const perCall: number[] = [];
  const baseline: number[] = [];
  let failures = 0;
  let last: net.Socket | undefined;
  const server = await listen((s) => {
    last = s;
    // Baseline: one native call Node makes anyway (getsockname through libuv).
    let t0 = process.hrtime.bigint();
    s.address();
    baseline.push(Number(process.hrtime.bigint() - t0));
    t0 = process.hrtime.bigint();
    const r = originalDestination(s);
    perCall.push(Number(process.hrtime.bigint() - t0));
    if (!r.ok || !r.redirected) failures++;
    s.end('x');
  });
  // Steady state on one socket, no accept in between: the call's own cost.
  const repeated = (fn: () => unknown, n: number): number => {
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    return Number(process.hrtime.bigint() - t) / n / 1000;
  };
  for (let i = 0; i < 200; i++) await connectOnce(target!); // warm-up: koffi load, JIT
  perCall.length = 0;
  baseline.length = 0;
  const t0 = performance.now();
  for (let i = 0; i < count; i++) await connectOnce(target!);
  const wallMs = performance.now() - t0;
  const held = net.connect(parseTarget(target!)).on('error', () => undefined);
  await new Promise((r) => held.once('connect', r));
  while (!last || last.remotePort !== held.localPort) await new Promise((r) => setTimeout(r, 1));
  const sock = last;
  const loopOriginalDstUs = repeated(() => originalDestination(sock), 100_000);
  const loopGetsocknameUs = repeated(() => (sock as unknown as { _handle: { getsockname(o: object): number } })._handle.getsockname({}), 100_000);
  held.destroy();
  server.close();
  const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]! / 1000;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length / 1000;
  console.log(JSON.stringify({
    connections: count,
    failures,
    originalDstUs: { mean: mean(perCall), p50: q(perCall, 0.5), p99: q(perCall, 0.99) },
    getsocknameUs: { mean: mean(baseline), p50: q(baseline, 0.5), p99: q(baseline, 0.99) },
    connectionUs: (wallMs * 1000) / count,
    repeatedOnOneSocketUs: { originalDst: loopOriginalDstUs, getsockname: loopGetsocknameUs },
  }));
} else {
  console.error(`unknown mode ${mode}`);
  process.exitCode = 2;
}

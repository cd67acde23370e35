// The simulated pod of the capture netns test, run inside the pod namespace:
//   apps <certDir>          HTTP/1 :8080, :8082 and :8084, h2c :8081 and :8083, gRPC :50051, HTTPS :8443, TCP echo :9000;
//                           every answer names the peer address the app saw
//   proxy <planFile> <podIPs> <nodeIPs>
//                           the CaptureProxy on its capture ports, plan re-read on each decision
//   grpc <host:port> <method> [userAgent]   one call, prints {code, details, res}
//   mesh <inPort> <outPort> [sourceAddress]
//                           a stand-in for a mesh proxy (run it as the mesh UID): listens on
//                           inPort (Envoy 15006, linkerd-proxy 4143) and outPort (15001, 4140),
//                           relays each connection to its original destination (inbound from
//                           sourceAddress, as Envoy's passthrough binds 127.0.0.6), and prints
//                           "mesh <direction> <ip:port>" per connection
//   load-h2 <url> <seconds> <streams>       <streams> concurrent GETs kept in flight on one h2c session, prints {rps, errors}
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { createLogger } from '../../common/log.ts';
import type { LiveFaultPlan } from '../../contract/plans.ts';
import { CaptureProxy } from '../../sidecar/capture/capture-proxy.ts';
import { DEFAULT_PROXY_PORTS } from '../../contract/pod-layout.ts';
import { nodeAddresses } from '../../sidecar/capture/probes.ts';
import { originalDestination } from '../../sidecar/capture/original-destination.ts';
import { Metrics } from '../../sidecar/metrics.ts';
import { CART, CartClient, unaryCall, type CartClientInstance } from './grpc-cart.ts';

const [mode, ...args] = process.argv.slice(2);

if (mode === 'apps') {
  const certDir = args[0]!;
  const answer = (port: number, url: string | undefined, peer: string | undefined) => `app ${port} ${url} from ${peer}`;
  for (const port of [8080, 8082, 8084]) http.createServer((req, res) => res.end(answer(port, req.url, req.socket.remoteAddress))).listen(port, '::');
  for (const port of [8081, 8083]) {
    const h2 = http2.createServer();
    h2.on('stream', (stream, headers) => {
      stream.respond({ ':status': 200 });
      stream.end(answer(port, headers[':path'], stream.session?.socket.remoteAddress));
    });
    h2.listen(port, '::');
  }
  https.createServer({ key: readFileSync(`${certDir}/key.pem`), cert: readFileSync(`${certDir}/cert.pem`) }, (req, res) => res.end(answer(8443, req.url, req.socket.remoteAddress))).listen(8443, '::');
  net.createServer((s) => s.pipe(s)).listen(9000, '::');
  const g = new grpc.Server();
  g.addService(CART, {
    AddItem: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { from: call.getPeer() }),
    GetCart: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { from: call.getPeer() }),
    Watch: (call: grpc.ServerWritableStream<unknown, unknown>) => call.end(),
  });
  g.bindAsync('[::]:50051', grpc.ServerCredentials.createInsecure(), () => console.log('apps ready'));
} else if (mode === 'proxy') {
  const [planFile, podIPs, nodeIPs] = args as [string, string, string];
  const proxy = await CaptureProxy.start({
    listenHost: '::',
    inboundPort: DEFAULT_PROXY_PORTS.inbound,
    outboundPort: DEFAULT_PROXY_PORTS.outbound,
    podAddresses: new Set(podIPs.split(',')),
    nodeAddresses: nodeAddresses(undefined, nodeIPs),
    plan: () => JSON.parse(readFileSync(planFile, 'utf8')) as LiveFaultPlan,
    faultHeader: true,
    metrics: new Metrics(),
    log: createLogger('capture', 'silent'),
  });
  await proxy.ready();
  process.on('SIGTERM', () => void proxy.close().then(() => process.exit(0)));
  process.on('SIGUSR2', () => console.log(JSON.stringify({ refused: proxy.refused })));
  console.log('proxy ready');
} else if (mode === 'mesh') {
  const [inPort, outPort, source] = args as [string, string, string | undefined];
  for (const [direction, port] of [['inbound', Number(inPort)], ['outbound', Number(outPort)]] as const) {
    net.createServer({ allowHalfOpen: true }, (s) => {
      const o = originalDestination(s);
      if (!o.ok || !o.redirected) return void s.destroy();
      const { address, port: to } = o.destination;
      console.log(`mesh ${direction} ${address}:${to}`);
      const up = net.connect({ host: address, port: to, allowHalfOpen: true, ...(direction === 'inbound' && source ? { localAddress: source } : {}) });
      s.pipe(up).pipe(s);
      up.on('error', () => s.destroy());
      s.on('error', () => up.destroy());
    }).listen(port, '0.0.0.0');
  }
  console.log('mesh ready');
} else if (mode === 'grpc') {
  const [address, method, userAgent] = args as [string, string, string | undefined];
  const client = new CartClient(address, grpc.credentials.createInsecure(), userAgent ? { 'grpc.primary_user_agent': userAgent } : {}) as unknown as CartClientInstance;
  const r = await unaryCall(client, method, {});
  console.log(JSON.stringify({ code: r.err?.code ?? 0, details: r.err?.details ?? null, res: r.res ?? null }));
  client.close();
} else if (mode === 'load-h2') {
  const [url, seconds, streams] = args as [string, string, string];
  const session = http2.connect(url);
  const until = performance.now() + Number(seconds) * 1000;
  let done = 0;
  let errors = 0;
  const seen: Record<string, number> = {};
  const note = (what: string) => {
    errors++;
    seen[what] = (seen[what] ?? 0) + 1;
  };
  const path = new URL(url).pathname;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const req = session.request({ ':path': path });
      let status = 0;
      let body = '';
      req.on('response', (h) => (status = Number(h[':status'])));
      req.on('data', (d: Buffer) => status !== 200 && (body += d.toString()));
      req.on('end', () => status !== 200 && note(`${status} ${body.trim()}`));
      req.on('end', () => (done++, resolve()));
      req.on('error', (err: NodeJS.ErrnoException) => (note(err.code ?? err.message), resolve()));
    });
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Number(streams) }, async () => {
    while (performance.now() < until) await one();
  }));
  console.log(JSON.stringify({ rps: done / ((performance.now() - t0) / 1000), errors, ...(errors > 0 ? { errorKinds: seen } : {}) }));
  session.close();
} else {
  console.error(`unknown mode ${mode}`);
  process.exitCode = 2;
}

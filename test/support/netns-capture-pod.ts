// The simulated pod of the capture netns test, run inside the pod namespace:
//   apps <certDir>          HTTP/1 :8080 and :8082, h2c :8081, gRPC :50051, HTTPS :8443, TCP echo :9000;
//                           every answer names the peer address the app saw
//   proxy <planFile> <podIPs> <nodeIPs>
//                           the CaptureProxy on its capture ports, plan re-read on each decision
//   grpc <host:port> <method> [userAgent]   one call, prints {code, details, res}
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { createLogger } from '../../common/log.ts';
import type { LiveFaultPlan } from '../../policies/types.ts';
import { CaptureProxy } from '../../sidecar/capture/capture-proxy.ts';
import { CAPTURE_PORTS } from '../../sidecar/capture/capture-rules.ts';
import { nodeAddresses } from '../../sidecar/capture/probes.ts';
import { Metrics } from '../../sidecar/metrics.ts';
import { CART, CartClient, unaryCall, type CartClientInstance } from './grpc-cart.ts';

const [mode, ...args] = process.argv.slice(2);

if (mode === 'apps') {
  const certDir = args[0]!;
  const answer = (port: number, url: string | undefined, peer: string | undefined) => `app ${port} ${url} from ${peer}`;
  for (const port of [8080, 8082]) http.createServer((req, res) => res.end(answer(port, req.url, req.socket.remoteAddress))).listen(port, '::');
  const h2 = http2.createServer();
  h2.on('stream', (stream, headers) => {
    stream.respond({ ':status': 200 });
    stream.end(answer(8081, headers[':path'], stream.session?.socket.remoteAddress));
  });
  h2.listen(8081, '::');
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
    inboundPort: CAPTURE_PORTS.inbound,
    outboundPort: CAPTURE_PORTS.outbound,
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
} else if (mode === 'grpc') {
  const [address, method, userAgent] = args as [string, string, string | undefined];
  const client = new CartClient(address, grpc.credentials.createInsecure(), userAgent ? { 'grpc.primary_user_agent': userAgent } : {}) as unknown as CartClientInstance;
  const r = await unaryCall(client, method, {});
  console.log(JSON.stringify({ code: r.err?.code ?? 0, details: r.err?.details ?? null, res: r.res ?? null }));
  client.close();
} else {
  console.error(`unknown mode ${mode}`);
  process.exitCode = 2;
}

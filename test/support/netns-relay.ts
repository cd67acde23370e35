// Run inside a pod's network namespace: relays between UNIX sockets (which
// any namespace reaches through the file system) and TCP ports on the pod's
// loopback, so the test process reaches the proxy's admin API and Toxiproxy
// (127.0.0.1 only), and the proxy reaches a root-namespace loopback service
// (the API server) at the address its kubeconfig names.
//   netns-relay.ts <socket>=<port>...   connections to <socket> go to 127.0.0.1:<port>
//                  <port>=<socket>...   connections to 127.0.0.1:<port> go to <socket>
// Prints "relay ready" once all listen.
import { rmSync } from 'node:fs';
import net from 'node:net';

type End = { path: string } | { port: number };
const end = (s: string): End => (/^\d+$/.test(s) ? { port: Number(s) } : { path: s });
const pairs = process.argv.slice(2).map((a) => {
  const [from, to] = a.split('=') as [string, string];
  return { from: end(from), to: end(to) };
});
await Promise.all(
  pairs.map(
    ({ from, to }) =>
      new Promise<void>((resolve, reject) => {
        if ('path' in from) rmSync(from.path, { force: true });
        const server = net.createServer((c) => {
          const up = 'path' in to ? net.connect(to.path) : net.connect(to.port, '127.0.0.1');
          c.pipe(up).pipe(c);
          up.on('error', () => c.destroy());
          c.on('error', () => up.destroy());
        });
        server.once('error', reject);
        if ('path' in from) server.listen(from.path, resolve);
        else server.listen(from.port, '127.0.0.1', resolve);
      }),
  ),
);
console.log('relay ready');
